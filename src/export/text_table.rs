//! Tables as text for a terminal or a paper: columns padded to their widest cell, as
//! aligned plain text or as Markdown (header rule after the first row).

/// `table`'s rows (the first is the header) as text.
pub fn render(table: &[Vec<String>], markdown: bool) -> String {
    let cols = table.first().map(|r| r.len()).unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(s, &w)| format!("{s}{}", " ".repeat(w - s.chars().count())))
            .collect();
        if markdown {
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w.max(3))).collect();
                out.push_str(&format!("| {} |\n", rule.join(" | ")));
            }
        } else {
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
    }
    out
}
