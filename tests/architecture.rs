//! Architecture check: the crate is organised in rooms, the top-level modules under `src/`
//! (`src/model/**` is room `model`, `src/session.rs` is room `session`, `src/lib.rs` is `lib`,
//! `src/main.rs` is `main`, `src/cli/**` is `cli`). `docs/ARCHITECTURE.md` describes the rooms;
//! the table `ROOMS` below says which rooms each one may import, with the reason.
//!
//! Rules (all failures are collected and reported together, with file, line and import):
//! 1. Layer rule: a file in room R imports from room S (S != R) only if `ROOMS` lets R import S.
//! 2. No circles: no group of files may import each other in a circle (file -> file graph).
//!
//! What counts as an import:
//! - `use` statements (with groups `{..}`, `self`, `as` renames and `*` globs) and paths written
//!   in code (`crate::model::buffers::release()`), starting with `crate::`, `super::`, `self::`,
//!   a child module (`mod x;` then `x::f()`) or a name brought in by a `use`; in the binary
//!   (`src/main.rs`, `src/cli/`) also `pathscope::`, which points into the library.
//! - A path names the file of its longest prefix that is a module (`a/b.rs` or `a/b/mod.rs`); the
//!   rest are item names. Importing an item through a folder's front door (`mod.rs`, `lib.rs`) that
//!   re-exports it with `pub use` counts as importing the file that defines it.
//!
//! What does not count: comments and doc comments (doc links too), string literals, anything in a
//! `#[cfg(test)]` item (tests may use fixtures from higher rooms) or in a file declared by
//! `#[cfg(test)] mod x;`, `mod x;` declarations, paths that reach no file of ours (other crates).
//! A front door's `pub use` re-exports are not edges of the circle graph, but one that reaches
//! into another room is still held to the layer rule. For circles, a file reaching the front door
//! of its own folder or an ancestor folder (`super::Error` from `room/x.rs`) is hierarchy, not a
//! circle, and is ignored.
//!
//! If the check fails, move the code so that it imports downwards; if the architecture really
//! changes, change `ROOMS` and `docs/ARCHITECTURE.md` together.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// A room and the rooms it may import besides itself.
struct Room {
    name: &'static str,
    may_import: &'static [&'static str],
    /// Why, in a few words; quoted in failure messages.
    rule: &'static str,
}

/// Who may import whom. Lower rooms come first; the table itself must have no circle.
#[rustfmt::skip]
const ROOMS: &[Room] = &[
    // kernels: numeric loops (convolution, pooling, SIMD) that know nothing of networks.
    Room { name: "kernels", may_import: &[], rule: "kernels know no network" },
    // net: layers and graphs built from kernels.
    Room { name: "net", may_import: &["kernels"], rule: "layers are built from kernels only" },
    // model: whole classifiers (architectures, weights, preprocessing) built from layers.
    Room { name: "model", may_import: &["net", "kernels"], rule: "models are built from layers and kernels" },
    // attribution: saliency methods computed on models.
    Room { name: "attribution", may_import: &["model", "net", "kernels", "device"], rule: "attribution computes on models and knows no presentation" },
    // metrics: scores of attribution maps.
    Room { name: "metrics", may_import: &["attribution", "model", "net", "kernels"], rule: "metrics score attributions" },
    // engine: background jobs running attributions and metrics (and the embedded model's checkpoint).
    Room { name: "engine", may_import: &["metrics", "attribution", "model", "net", "kernels", "device", "assets"], rule: "the engine runs computations and knows no presentation" },
    // render: colour maps and heatmaps, pure presentation of numbers.
    Room { name: "render", may_import: &[], rule: "rendering turns numbers into pixels and knows nothing else" },
    // export: files (figures, arrays, metadata) from rendered maps and attribution results.
    Room { name: "export", may_import: &["render", "attribution"], rule: "export writes rendered maps and attribution results" },
    // session: saved studio sessions, written through export.
    Room { name: "session", may_import: &["export"], rule: "sessions are written through export only" },
    // assets: bundled model weights and sample images.
    Room { name: "assets", may_import: &["model"], rule: "assets only load bundled models" },
    // device: choosing and describing compute devices, and the memory the machine has.
    Room { name: "device", may_import: &[], rule: "device selection stands alone" },
    // roar: remove-and-retrain experiments: datasets, a small network trained with candle-nn, retraining runs and their figure.
    Room { name: "roar", may_import: &["metrics", "attribution", "model", "net", "kernels", "export"], rule: "ROAR trains and scores on the library's methods and knows no studio" },
    // ui: the desktop studio, on top of the whole library.
    Room { name: "ui", may_import: &["kernels", "net", "model", "attribution", "metrics", "engine", "render", "export", "session", "assets", "device"], rule: "the studio sits on top of the library" },
    // cli: the binary's commands; headless, so no studio code.
    Room { name: "cli", may_import: &["kernels", "net", "model", "attribution", "metrics", "engine", "render", "export", "session", "assets", "device", "roar"], rule: "the command line is headless: no studio code" },
    // lib: src/lib.rs only declares the library rooms.
    Room { name: "lib", may_import: &["kernels", "net", "model", "attribution", "metrics", "engine", "render", "export", "session", "assets", "device", "roar", "ui"], rule: "lib.rs only declares the rooms" },
    // main: src/main.rs wires the binary together and may use anything.
    Room { name: "main", may_import: &["kernels", "net", "model", "attribution", "metrics", "engine", "render", "export", "session", "assets", "device", "roar", "ui", "cli", "lib"], rule: "main may use anything" },
];

#[test]
fn rooms_stay_as_drawn() {
    let failures = check_tree(&crate_src());
    if !failures.is_empty() {
        panic!("{}", report(&failures));
    }
}

/// The crate's `src/`: from cargo's `CARGO_MANIFEST_DIR`, or, compiled with plain `rustc`, next to
/// the `tests/` folder holding this file (as the path given to rustc, relative to where it runs).
fn crate_src() -> PathBuf {
    match option_env!("CARGO_MANIFEST_DIR") {
        Some(dir) => Path::new(dir).join("src"),
        None => Path::new(file!())
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join("src"),
    }
}

fn report(failures: &[String]) -> String {
    format!(
        "{} architecture problem(s); the rooms and their rules are in ROOMS in tests/architecture.rs \
         and described in docs/ARCHITECTURE.md:\n\n{}\n",
        failures.len(),
        failures.join("\n")
    )
}

/// Runs every check on a source root laid out like `src/`; one message per problem.
fn check_tree(src: &Path) -> Vec<String> {
    let mut failures = table_problems(ROOMS);
    let tree = match Tree::scan(src) {
        Ok(tree) => tree,
        Err(message) => {
            failures.push(message);
            return failures;
        }
    };
    let imports = tree.imports();
    failures.extend(unknown_rooms(&tree, ROOMS));
    failures.extend(layer_violations(&tree, &imports, ROOMS));
    failures.extend(circles(&tree, &imports));
    failures
}

// ---------------------------------------------------------------------------------------------
// The checks

/// The table must name only known rooms and must not let two rooms import each other, even
/// through others.
fn table_problems(rooms: &[Room]) -> Vec<String> {
    let mut problems = Vec::new();
    let index = |name: &str| rooms.iter().position(|room| room.name == name);
    let mut adjacency = vec![Vec::new(); rooms.len()];
    for (from, room) in rooms.iter().enumerate() {
        for &target in room.may_import {
            match index(target) {
                Some(to) if to != from => adjacency[from].push(to),
                Some(_) => {}
                None => problems.push(format!(
                    "ROOMS: room {} may import `{target}`, which has no row",
                    room.name
                )),
            }
        }
    }
    for component in strongly_connected_components(&adjacency) {
        if component.len() > 1 {
            let mut names: Vec<&str> = component.iter().map(|&i| rooms[i].name).collect();
            names.sort_unstable();
            problems.push(format!(
                "ROOMS has a circle among rooms {}: each may import another that may import it back",
                names.join(", ")
            ));
        }
    }
    problems
}

/// Files in rooms that have no row in the table.
fn unknown_rooms(tree: &Tree, rooms: &[Room]) -> Vec<String> {
    let mut unknown: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for file in &tree.files {
        if !rooms.iter().any(|room| room.name == file.room) {
            unknown.entry(&file.room).or_default().push(&file.rel);
        }
    }
    unknown
        .into_iter()
        .map(|(room, files)| {
            format!(
                "src/{} is in room {room}, which has no row in ROOMS (tests/architecture.rs): add one saying \
                 what it may import, and describe the room in docs/ARCHITECTURE.md",
                files.join(", src/")
            )
        })
        .collect()
}

/// Rule 1: every import from one room into another must be allowed by the table.
fn layer_violations(tree: &Tree, imports: &[Import], rooms: &[Room]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for import in imports {
        // A path through a name that a `use` brought in repeats that `use`, reported on its own line.
        if import.via_alias {
            continue;
        }
        let from = &tree.files[import.from];
        let to = &tree.files[import.to];
        if from.room == to.room {
            continue;
        }
        // A room missing from the table is reported by `unknown_rooms`.
        let Some(room) = rooms.iter().find(|room| room.name == from.room) else {
            continue;
        };
        if room.may_import.contains(&to.room.as_str()) || !seen.insert((import.from, import.line, &import.written)) {
            continue;
        }
        let allowed = if room.may_import.is_empty() {
            "nothing of ours".to_string()
        } else {
            format!("only {}, not {}", room.may_import.join(", "), to.room)
        };
        failures.push(format!(
            "src/{}:{} imports {}: room {} may import {allowed} (rule: {})",
            from.rel, import.line, import.written, room.name, room.rule
        ));
    }
    failures
}

/// Rule 2: no group of files imports each other in a circle.
fn circles(tree: &Tree, imports: &[Import]) -> Vec<String> {
    #[derive(Default)]
    struct Edge {
        items: BTreeSet<String>,
        modules: BTreeSet<String>,
        lines: BTreeSet<usize>,
        alias_lines: BTreeSet<usize>,
    }
    let mut edges: BTreeMap<(usize, usize), Edge> = BTreeMap::new();
    for import in imports {
        let (from, to) = (&tree.files[import.from], &tree.files[import.to]);
        // A child reaching its (or an ancestor) folder's front door is hierarchy: the parent declares it.
        let to_ancestor =
            from.krate == to.krate && to.module.len() < from.module.len() && from.module.starts_with(&to.module);
        if import.reexport || import.from == import.to || to_ancestor {
            continue;
        }
        let edge = edges.entry((import.from, import.to)).or_default();
        match &import.item {
            Some(item) => edge.items.insert(item.clone()),
            None => edge.modules.insert(import.module_label.clone()),
        };
        if import.via_alias {
            edge.alias_lines.insert(import.line);
        } else {
            edge.lines.insert(import.line);
        }
    }
    let mut adjacency = vec![Vec::new(); tree.files.len()];
    for &(from, to) in edges.keys() {
        adjacency[from].push(to);
    }
    let mut failures = Vec::new();
    for mut component in strongly_connected_components(&adjacency) {
        if component.len() < 2 {
            continue;
        }
        component.sort_unstable();
        let names: Vec<String> = component
            .iter()
            .map(|&i| format!("src/{}", tree.files[i].rel))
            .collect();
        let mut message = format!(
            "{} files import each other in a circle: {} (rule: no circles; move what they share into a \
             file that none of them imports back)",
            component.len(),
            names.join(", ")
        );
        for (&(from, to), edge) in &edges {
            if !(component.contains(&from) && component.contains(&to)) {
                continue;
            }
            // Name the items; a whole module only where no item of it is named.
            let what = if edge.items.is_empty() {
                &edge.modules
            } else {
                &edge.items
            };
            let lines = if edge.lines.is_empty() {
                &edge.alias_lines
            } else {
                &edge.lines
            };
            let lines: Vec<String> = lines.iter().map(usize::to_string).collect();
            message.push_str(&format!(
                "\n    src/{} -> src/{}: {} (line {})",
                tree.files[from].rel,
                tree.files[to].rel,
                what.iter().cloned().collect::<Vec<_>>().join(", "),
                lines.join(", ")
            ));
        }
        failures.push(message);
    }
    failures
}

/// Strongly connected components of a directed graph given as adjacency lists (Tarjan).
fn strongly_connected_components(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct Search<'a> {
        adjacency: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next_index: usize,
        components: Vec<Vec<usize>>,
    }
    fn visit(search: &mut Search, node: usize) {
        search.index[node] = Some(search.next_index);
        search.low[node] = search.next_index;
        search.next_index += 1;
        search.stack.push(node);
        search.on_stack[node] = true;
        let adjacency = search.adjacency;
        for &next in &adjacency[node] {
            match search.index[next] {
                None => {
                    visit(search, next);
                    search.low[node] = search.low[node].min(search.low[next]);
                }
                Some(next_index) if search.on_stack[next] => search.low[node] = search.low[node].min(next_index),
                Some(_) => {}
            }
        }
        if search.index[node] == Some(search.low[node]) {
            let mut component = Vec::new();
            while let Some(member) = search.stack.pop() {
                search.on_stack[member] = false;
                component.push(member);
                if member == node {
                    break;
                }
            }
            search.components.push(component);
        }
    }
    let nodes = adjacency.len();
    let mut search = Search {
        adjacency,
        index: vec![None; nodes],
        low: vec![0; nodes],
        on_stack: vec![false; nodes],
        stack: Vec::new(),
        next_index: 0,
        components: Vec::new(),
    };
    for node in 0..nodes {
        if search.index[node].is_none() {
            visit(&mut search, node);
        }
    }
    search.components
}

// ---------------------------------------------------------------------------------------------
// The source tree and its imports, resolved to files

/// The library (`src/lib.rs` and its modules) or the binary (`src/main.rs`, `src/cli/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Crate {
    Lib,
    Bin,
}

/// A path inside one crate, from its root (`["model", "conv", "ConvOp"]`).
type CratePath = (Crate, Vec<String>);

struct SourceFile {
    /// Path under the source root with `/` separators, e.g. `model/conv.rs`.
    rel: String,
    krate: Crate,
    /// Module path inside its crate: `model/conv.rs` -> `["model", "conv"]`, `lib.rs` -> `[]`.
    module: Vec<String>,
    room: String,
    /// `mod.rs`, `lib.rs`, `main.rs`, or `x.rs` beside an `x/` folder: its `pub use`s are re-exports.
    front_door: bool,
    parsed: ParsedSource,
    /// Names in scope that lead to our modules or items: child modules and `use`d names.
    aliases: HashMap<String, CratePath>,
    /// For front doors: `pub use` names and globs, as crate paths.
    reexports: BTreeMap<String, CratePath>,
    glob_reexports: Vec<CratePath>,
}

struct Tree {
    files: Vec<SourceFile>,
    modules: HashMap<CratePath, usize>,
}

/// One counted import, resolved to the file that defines what it names.
struct Import {
    from: usize,
    line: usize,
    /// As written in the source, e.g. `super::conv::{ConvOp}` -> `super::conv::ConvOp`.
    written: String,
    to: usize,
    /// The item named in the target file, if the path goes past the file (`None`: module or glob).
    item: Option<String>,
    /// For a module or glob import: how to name it in a report (`winograd`, `winograd::*`).
    module_label: String,
    /// A path in code through a name a `use` (or `mod`) brought into scope.
    via_alias: bool,
    /// A `pub use` in a front door.
    reexport: bool,
}

impl Tree {
    fn scan(src: &Path) -> Result<Tree, String> {
        let mut rels = Vec::new();
        collect_rust_files(src, "", &mut rels)?;
        rels.sort();
        let mut files = Vec::new();
        for rel in rels {
            let text = fs::read_to_string(src.join(&rel)).map_err(|e| format!("cannot read src/{rel}: {e}"))?;
            let (krate, module, room) = classify(&rel);
            files.push(SourceFile {
                rel,
                krate,
                module,
                room,
                front_door: false,
                parsed: parse_source(&text),
                aliases: HashMap::new(),
                reexports: BTreeMap::new(),
                glob_reexports: Vec::new(),
            });
        }
        // Files declared by `#[cfg(test)] mod x;` (and their children) are test code.
        let mut test_modules: Vec<CratePath> = Vec::new();
        for file in &files {
            for child in file.parsed.child_modules.iter().filter(|child| child.test_only) {
                test_modules.push((file.krate, file.module.iter().chain(&child.path).cloned().collect()));
            }
        }
        files.retain(|file| {
            !test_modules
                .iter()
                .any(|(krate, module)| *krate == file.krate && file.module.starts_with(module))
        });
        let modules: HashMap<CratePath, usize> = files
            .iter()
            .enumerate()
            .map(|(i, file)| ((file.krate, file.module.clone()), i))
            .collect();
        let has_children: BTreeSet<usize> = files
            .iter()
            .filter_map(|file| {
                let parent = file.module.split_last()?.1;
                modules.get(&(file.krate, parent.to_vec())).copied()
            })
            .collect();
        for (i, file) in files.iter_mut().enumerate() {
            let name = file.rel.rsplit('/').next().unwrap_or_default();
            file.front_door = name == "mod.rs" || file.module.is_empty() || has_children.contains(&i);
            file.aliases = aliases(file);
            let (named, globs) = reexports(file);
            file.reexports = named;
            file.glob_reexports = globs;
        }
        Ok(Tree { files, modules })
    }

    /// The file of the longest prefix of `path` that is a module, and the rest of the path.
    fn resolve(&self, krate: Crate, path: &[String]) -> Option<(usize, Vec<String>)> {
        (0..=path.len()).rev().find_map(|k| {
            self.modules
                .get(&(krate, path[..k].to_vec()))
                .map(|&file| (file, path[k..].to_vec()))
        })
    }

    /// Like `resolve`, but follows front doors' `pub use` re-exports to the file defining the item.
    fn resolve_item(&self, krate: Crate, path: &[String], hops: usize) -> Option<(usize, Vec<String>)> {
        let (file, rest) = self.resolve(krate, path)?;
        let door = &self.files[file];
        let Some(name) = rest.first().filter(|_| door.front_door && hops < 8) else {
            return Some((file, rest));
        };
        if let Some((target_crate, target)) = door.reexports.get(name) {
            let followed: Vec<String> = target.iter().chain(&rest[1..]).cloned().collect();
            return self
                .resolve_item(*target_crate, &followed, hops + 1)
                .or(Some((file, rest)));
        }
        // A glob re-export supplies the name only if the file it leads to defines it.
        for (source_crate, source) in &door.glob_reexports {
            let followed: Vec<String> = source.iter().chain(&rest).cloned().collect();
            if let Some((target, target_rest)) = self.resolve_item(*source_crate, &followed, hops + 1) {
                if target_rest
                    .first()
                    .is_some_and(|item| self.files[target].parsed.defines.contains(item))
                {
                    return Some((target, target_rest));
                }
            }
        }
        Some((file, rest))
    }

    /// Every counted import of every file, resolved to files.
    fn imports(&self) -> Vec<Import> {
        let mut imports = Vec::new();
        for (from, file) in self.files.iter().enumerate() {
            for raw in &file.parsed.imports {
                let first = raw.path.first().map(String::as_str).unwrap_or_default();
                let anchored =
                    matches!(first, "crate" | "super" | "self") || (first == "pathscope" && file.krate == Crate::Bin);
                // In code, `x::y` is ours only when `x` names one of our modules or items.
                if raw.kind == Kind::Inline && !anchored && !file.aliases.contains_key(first) {
                    continue;
                }
                let Some((krate, path)) = absolute(file, raw, &file.aliases) else {
                    continue;
                };
                let Some((to, rest)) = self.resolve_item(krate, &path, 0) else {
                    continue;
                };
                let module_label = match raw.path.last() {
                    Some(last) if raw.glob => format!("{last}::*"),
                    Some(last) => last.clone(),
                    None => "*".to_string(),
                };
                imports.push(Import {
                    from,
                    line: raw.line,
                    written: raw.written(),
                    to,
                    item: rest.first().cloned(),
                    module_label,
                    via_alias: raw.kind == Kind::Inline && !anchored,
                    reexport: raw.kind == Kind::PubUse && file.front_door,
                });
            }
        }
        imports
    }
}

fn collect_rust_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            collect_rust_files(&path, &format!("{prefix}{name}/"), out)?;
        } else if name.ends_with(".rs") {
            out.push(format!("{prefix}{name}"));
        }
    }
    Ok(())
}

/// Crate, module path and room of a file under the source root.
fn classify(rel: &str) -> (Crate, Vec<String>, String) {
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    let room = parts[0].trim_end_matches(".rs").to_string();
    let krate = if rel == "main.rs" || room == "cli" {
        Crate::Bin
    } else {
        Crate::Lib
    };
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    let is_root = parts.is_empty() && (stem == "lib" || stem == "main");
    if stem != "mod" && !is_root {
        parts.push(stem.to_string());
    }
    (krate, parts, room)
}

/// The crate path a written path stands for in `file`, or `None` if it is not ours.
fn absolute(file: &SourceFile, raw: &RawImport, aliases: &HashMap<String, CratePath>) -> Option<CratePath> {
    let here: Vec<String> = file.module.iter().chain(&raw.scope).cloned().collect();
    let (first, rest) = raw.path.split_first()?;
    let joined = |base: &[String], tail: &[String]| base.iter().chain(tail).cloned().collect::<Vec<_>>();
    match first.as_str() {
        "crate" => Some((file.krate, rest.to_vec())),
        "pathscope" if file.krate == Crate::Bin => Some((Crate::Lib, rest.to_vec())),
        "self" => Some((file.krate, joined(&here, rest))),
        "super" => {
            let mut base = here;
            let mut tail = raw.path.as_slice();
            while tail.first().is_some_and(|segment| segment == "super") {
                base.pop()?;
                tail = &tail[1..];
            }
            Some((file.krate, joined(&base, tail)))
        }
        name => aliases.get(name).map(|(krate, base)| (*krate, joined(base, rest))),
    }
}

/// Names in scope in a file that lead to our modules or items: declared child modules, then
/// names bound by `use` (repeated, since one `use` may start from a name another one brought in).
fn aliases(file: &SourceFile) -> HashMap<String, CratePath> {
    let mut aliases = HashMap::new();
    for child in &file.parsed.child_modules {
        if let Some(name) = child.path.last() {
            let path = file.module.iter().chain(&child.path).cloned().collect();
            aliases.insert(name.clone(), (file.krate, path));
        }
    }
    for _round in 0..4 {
        let before = aliases.len();
        for raw in file
            .parsed
            .imports
            .iter()
            .filter(|raw| raw.kind != Kind::Inline && !raw.glob)
        {
            let Some(name) = raw.binds.as_ref().filter(|name| *name != "_") else {
                continue;
            };
            if aliases.contains_key(name) {
                continue;
            }
            if let Some(path) = absolute(file, raw, &aliases) {
                aliases.insert(name.clone(), path);
            }
        }
        if aliases.len() == before {
            break;
        }
    }
    aliases
}

/// A front door's `pub use` re-exports: by the name they bind, and globs.
fn reexports(file: &SourceFile) -> (BTreeMap<String, CratePath>, Vec<CratePath>) {
    let mut named = BTreeMap::new();
    let mut globs = Vec::new();
    if !file.front_door {
        return (named, globs);
    }
    for raw in file.parsed.imports.iter().filter(|raw| raw.kind == Kind::PubUse) {
        let Some(path) = absolute(file, raw, &file.aliases) else {
            continue;
        };
        match &raw.binds {
            _ if raw.glob => globs.push(path),
            Some(name) => {
                named.insert(name.clone(), path);
            }
            None => {}
        }
    }
    (named, globs)
}

// ---------------------------------------------------------------------------------------------
// Reading a source file: tokens without comments and strings, then `use` trees, paths in code,
// `mod` declarations, and `#[cfg(test)]` items skipped.

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A string, character or number literal; its content never matters here.
    Literal,
}

struct Token {
    tok: Tok,
    line: usize,
}

fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let is_ident_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let token_line = line;
        let mut push = |tok: Tok| tokens.push(Token { tok, line: token_line });
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            // Line comments, `///` and `//!` doc comments alike.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i = block_comment_end(&chars, i, &mut line);
        } else if let Some(end) = string_end(&chars, i, &mut line) {
            push(Tok::Literal);
            i = end;
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // An escaped character literal: '\n', '\'', '\u{1F600}'.
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                push(Tok::Literal);
            } else if at(i + 2) == '\'' {
                i += 3;
                push(Tok::Literal);
            } else {
                // A lifetime or loop label; its name reads as a harmless identifier.
                i += 1;
            }
        } else if c.is_ascii_digit() {
            while is_ident_char(at(i)) || (at(i) == '.' && at(i + 1).is_ascii_digit()) {
                i += 1;
            }
            push(Tok::Literal);
        } else if is_ident_char(c) {
            let start = i;
            while is_ident_char(at(i)) {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            // A raw identifier, `r#type`.
            if word == "r" && at(i) == '#' && is_ident_char(at(i + 1)) {
                let name_start = i + 1;
                i = name_start;
                while is_ident_char(at(i)) {
                    i += 1;
                }
                word = chars[name_start..i].iter().collect();
            }
            push(Tok::Ident(word));
        } else if c == ':' && at(i + 1) == ':' {
            push(Tok::PathSep);
            i += 2;
        } else {
            push(Tok::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// The index just past a block comment starting at `start` (they nest).
fn block_comment_end(chars: &[char], start: usize, line: &mut usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        if chars[i] == '/' && next == Some('*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && next == Some('/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            if chars[i] == '\n' {
                *line += 1;
            }
            i += 1;
        }
    }
    chars.len()
}

/// If a string literal starts at `start` (`"…"`, `b"…"`, `c"…"`, `r"…"`, `r#"…"#`, `br"…"`), the
/// index just past it; newlines inside are counted into `line`.
fn string_end(chars: &[char], start: usize, line: &mut usize) -> Option<usize> {
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut i = start;
    if at(i) == 'b' || at(i) == 'c' {
        i += 1;
    }
    let raw = at(i) == 'r';
    if raw {
        i += 1;
    }
    let mut hashes = 0;
    while raw && at(i) == '#' {
        hashes += 1;
        i += 1;
    }
    if at(i) != '"' {
        return None;
    }
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\n' => *line += 1,
            '\\' if !raw => {
                if at(i + 1) == '\n' {
                    *line += 1;
                }
                i += 1;
            }
            '"' if (1..=hashes).all(|k| at(i + k) == '#') => return Some(i + 1 + hashes),
            _ => {}
        }
        i += 1;
    }
    Some(chars.len())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// A leaf of a private `use`.
    Use,
    /// A leaf of `pub use` / `pub(crate) use`.
    PubUse,
    /// A path of two or more segments written in code.
    Inline,
}

/// A path found in a file, before resolution.
#[derive(Clone, Debug)]
struct RawImport {
    line: usize,
    /// As written, `self` leaves dropped (`use a::{self}` -> `a`); a leading `::` is an empty segment.
    path: Vec<String>,
    glob: bool,
    /// The name a `use` leaf brings into scope (its last segment or its `as` rename).
    binds: Option<String>,
    /// Inline modules (`mod inner { … }`) around it within its file.
    scope: Vec<String>,
    kind: Kind,
}

impl RawImport {
    fn written(&self) -> String {
        let mut text = self.path.join("::");
        if self.glob {
            text.push_str("::*");
        }
        if let Some(name) = self.binds.as_ref().filter(|name| Some(*name) != self.path.last()) {
            text.push_str(&format!(" as {name}"));
        }
        text
    }
}

/// A `mod x;` declaration.
#[derive(Clone, Debug)]
struct ChildModule {
    /// Relative to the file's module (inline modules around it included).
    path: Vec<String>,
    /// Declared under `#[cfg(test)]`: the file is test code.
    test_only: bool,
}

#[derive(Default)]
struct ParsedSource {
    imports: Vec<RawImport>,
    child_modules: Vec<ChildModule>,
    /// Names of items defined in the file (to tell what a glob re-export supplies).
    defines: BTreeSet<String>,
}

fn parse_source(text: &str) -> ParsedSource {
    let mut parser = Parser {
        tokens: tokenize(text),
        pos: 0,
        depth: 0,
        scopes: Vec::new(),
        out: ParsedSource::default(),
    };
    parser.run();
    parser.out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Curly-brace depth.
    depth: usize,
    /// Inline modules we are in, with the depth at which each opened.
    scopes: Vec<(String, usize)>,
    out: ParsedSource,
}

impl Parser {
    fn tok(&self, i: usize) -> Option<&Tok> {
        self.tokens.get(i).map(|token| &token.tok)
    }

    fn is(&self, i: usize, punct: char) -> bool {
        self.tok(i) == Some(&Tok::Punct(punct))
    }

    fn ident(&self, i: usize) -> Option<&str> {
        match self.tok(i) {
            Some(Tok::Ident(word)) => Some(word),
            _ => None,
        }
    }

    fn line(&self, i: usize) -> usize {
        self.tokens.get(i).or(self.tokens.last()).map_or(0, |token| token.line)
    }

    fn scope(&self) -> Vec<String> {
        self.scopes.iter().map(|(name, _)| name.clone()).collect()
    }

    /// The index of the bracket closing the one at `open` (or the end).
    fn matching(&self, open: usize) -> usize {
        let mut depth = 0usize;
        for i in open..self.tokens.len() {
            match self.tok(i) {
                Some(Tok::Punct('(' | '[' | '{')) => depth += 1,
                Some(Tok::Punct(')' | ']' | '}')) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    fn run(&mut self) {
        while let Some(tok) = self.tok(self.pos).cloned() {
            match tok {
                Tok::Punct('#') => self.attribute(),
                Tok::Punct('{') => {
                    self.depth += 1;
                    self.pos += 1;
                }
                Tok::Punct('}') => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.scopes.last().is_some_and(|&(_, depth)| depth == self.depth) {
                        self.scopes.pop();
                    }
                    self.pos += 1;
                }
                Tok::Ident(word) => match word.as_str() {
                    "use" => self.use_statement(),
                    "mod" => self.module(),
                    "fn" | "struct" | "enum" | "union" | "trait" | "type" | "const" | "static" => {
                        if let Some(name) = self.ident(self.pos + 1) {
                            self.out.defines.insert(name.to_string());
                        }
                        self.pos += 1;
                    }
                    _ => self.path_in_code(),
                },
                _ => self.pos += 1,
            }
        }
    }

    /// `#[…]` or `#![…]`; a `cfg` that needs `test` hides the item it is on (or, inner, the rest
    /// of its block).
    fn attribute(&mut self) {
        let inner = self.is(self.pos + 1, '!');
        let open = self.pos + 1 + usize::from(inner);
        if !self.is(open, '[') {
            self.pos += 1;
            return;
        }
        let close = self.matching(open);
        let words: Vec<&str> = (open + 1..close).filter_map(|i| self.ident(i)).collect();
        let test_only = words.first() == Some(&"cfg") && words.contains(&"test") && !words.contains(&"not");
        self.pos = close + 1;
        if test_only {
            self.skip_item(inner);
        }
    }

    /// Skips the item after a `#[cfg(test)]`: up to its first `;` outside brackets, or to the brace
    /// closing its body; with `whole_block`, up to the end of the enclosing block.
    fn skip_item(&mut self, whole_block: bool) {
        // Further attributes belong to the same item.
        while self.is(self.pos, '#') && self.is(self.pos + 1, '[') {
            self.pos = self.matching(self.pos + 1) + 1;
        }
        // A test-only `mod x;` declares a file of test code.
        let mut k = self.pos;
        if self.ident(k) == Some("pub") {
            k += 1;
            if self.is(k, '(') {
                k = self.matching(k) + 1;
            }
        }
        if let (Some("mod"), Some(name), true) = (self.ident(k), self.ident(k + 1), self.is(k + 2, ';')) {
            let path = self.scope().into_iter().chain([name.to_string()]).collect();
            self.out.child_modules.push(ChildModule { path, test_only: true });
        }
        let mut depth = 0usize;
        while let Some(tok) = self.tok(self.pos) {
            match tok {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(close @ (')' | ']' | '}')) => {
                    // The enclosing block ends here: leave its brace to the main loop.
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 && *close == '}' && !whole_block {
                        self.pos += 1;
                        return;
                    }
                }
                Tok::Punct(';') if depth == 0 && !whole_block => {
                    self.pos += 1;
                    return;
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// `mod x;` declares a child module; `mod x { … }` opens an inline one.
    fn module(&mut self) {
        let Some(name) = self.ident(self.pos + 1).map(String::from) else {
            self.pos += 1;
            return;
        };
        if self.is(self.pos + 2, ';') {
            let path = self.scope().into_iter().chain([name.clone()]).collect();
            self.out.child_modules.push(ChildModule { path, test_only: false });
        } else if self.is(self.pos + 2, '{') {
            self.scopes.push((name.clone(), self.depth));
            self.depth += 1;
        } else {
            self.pos += 1;
            return;
        }
        self.out.defines.insert(name);
        self.pos += 3;
    }

    fn use_statement(&mut self) {
        let kind = if self.after_pub(self.pos) {
            Kind::PubUse
        } else {
            Kind::Use
        };
        let mut i = self.pos + 1;
        let mut leaves = Vec::new();
        self.use_tree(&mut i, Vec::new(), kind, &mut leaves);
        // Move past the `;` (and past anything the tree reader did not understand).
        while i < self.tokens.len() && !self.is(i, ';') {
            i += 1;
        }
        self.pos = i + 1;
        self.out.imports.extend(leaves);
    }

    /// Whether the token at `i` follows `pub` or `pub(…)`.
    fn after_pub(&self, i: usize) -> bool {
        if i == 0 {
            return false;
        }
        if self.ident(i - 1) == Some("pub") {
            return true;
        }
        if !self.is(i - 1, ')') {
            return false;
        }
        let open = (0..i - 1).rev().find(|&k| self.is(k, '('));
        open.is_some_and(|open| open > 0 && self.ident(open - 1) == Some("pub"))
    }

    /// Reads one use tree (`a::b::C as D`, `a::*`, `a::{…}`) at `*i`, adding its leaves.
    fn use_tree(&self, i: &mut usize, prefix: Vec<String>, kind: Kind, leaves: &mut Vec<RawImport>) {
        let mut path = prefix;
        if self.tok(*i) == Some(&Tok::PathSep) {
            if path.is_empty() {
                path.push(String::new());
            }
            *i += 1;
        }
        let leaf = |line, path, glob, binds| RawImport {
            line,
            path,
            glob,
            binds,
            scope: self.scope(),
            kind,
        };
        loop {
            match self.tok(*i) {
                Some(Tok::Ident(segment)) => {
                    let line = self.line(*i);
                    path.push(segment.clone());
                    *i += 1;
                    if self.tok(*i) == Some(&Tok::PathSep) {
                        *i += 1;
                        continue;
                    }
                    if path.last().is_some_and(|last| last == "self") {
                        path.pop();
                    }
                    let mut binds = path.last().cloned();
                    if self.ident(*i) == Some("as") {
                        binds = self.ident(*i + 1).map(String::from);
                        *i += 2;
                    }
                    leaves.push(leaf(line, path, false, binds));
                    return;
                }
                Some(Tok::Punct('*')) => {
                    leaves.push(leaf(self.line(*i), path, true, None));
                    *i += 1;
                    return;
                }
                Some(Tok::Punct('{')) => {
                    *i += 1;
                    while *i < self.tokens.len() && !self.is(*i, '}') {
                        let before = *i;
                        self.use_tree(i, path.clone(), kind, leaves);
                        if self.is(*i, ',') || *i == before {
                            *i += 1;
                        }
                    }
                    *i += 1;
                    return;
                }
                _ => return,
            }
        }
    }

    /// A path of two or more segments in code (`crate::model::buffers::release`); kept as a
    /// candidate, and counted later if its first segment leads to one of our modules.
    fn path_in_code(&mut self) {
        let start = self.pos;
        let previous = start.checked_sub(1).and_then(|i| self.tok(i));
        // Not the start of a path: the tail of a longer one, a field or method, a macro variable.
        let continues = matches!(previous, Some(Tok::PathSep | Tok::Punct('.' | '$')));
        // `pub(in crate::x)` restricts visibility; it imports nothing.
        let visibility = start >= 2 && self.ident(start - 1) == Some("in") && self.is(start - 2, '(');
        let starts_path = self.tok(start + 1) == Some(&Tok::PathSep) && self.ident(start + 2).is_some();
        if continues || visibility || !starts_path {
            self.pos += 1;
            return;
        }
        let mut path = Vec::new();
        let mut i = start;
        while let Some(segment) = self.ident(i) {
            path.push(segment.to_string());
            if self.tok(i + 1) == Some(&Tok::PathSep) && self.ident(i + 2).is_some() {
                i += 2;
            } else {
                break;
            }
        }
        let import = RawImport {
            line: self.line(start),
            path,
            glob: false,
            binds: None,
            scope: self.scope(),
            kind: Kind::Inline,
        };
        self.out.imports.push(import);
        self.pos = i + 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests of the checker itself, on small synthetic trees

/// A throw-away source tree `…/src` in the temp folder, removed when dropped.
struct TempTree {
    dir: PathBuf,
}

impl TempTree {
    fn new(name: &str) -> TempTree {
        let dir = std::env::temp_dir().join(format!("pathscope-architecture-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src")).expect("creating a temporary source tree");
        TempTree { dir }
    }

    /// Writes `src/<rel>` with one line per entry of `lines`.
    fn write(&self, rel: &str, lines: &[&str]) -> &TempTree {
        let path = self.src().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("creating a folder in the temporary tree");
        }
        fs::write(&path, lines.join("\n") + "\n").expect("writing a file in the temporary tree");
        self
    }

    fn src(&self) -> PathBuf {
        self.dir.join("src")
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn assert_passes(tree: &TempTree) {
    let failures = check_tree(&tree.src());
    assert!(
        failures.is_empty(),
        "expected no failures, got:\n{}",
        failures.join("\n")
    );
}

#[test]
fn kernels_importing_model_fails_and_passes_without_it() {
    let tree = TempTree::new("layer");
    tree.write("lib.rs", &["pub mod kernels;", "pub mod model;"])
        .write("model/mod.rs", &["pub struct Thing;"])
        .write("kernels/mod.rs", &["pub mod conv;"])
        .write(
            "kernels/conv.rs",
            &[
                "//! Convolution.",
                "",
                "use crate::model::Thing;",
                "",
                "pub fn conv() {}",
            ],
        );
    let failures = check_tree(&tree.src());
    assert_eq!(
        failures,
        [
            "src/kernels/conv.rs:3 imports crate::model::Thing: room kernels may import nothing of ours \
          (rule: kernels know no network)"
        ]
    );
    tree.write("kernels/conv.rs", &["//! Convolution.", "", "pub fn conv() {}"]);
    assert_passes(&tree);
}

#[test]
fn comments_strings_and_test_code_are_not_imports() {
    let tree = TempTree::new("hidden");
    tree.write("model/mod.rs", &["pub struct A;", "pub fn k() {}"])
        .write("kernels/fixtures.rs", &["use crate::model::A;"])
        .write(
            "kernels/mod.rs",
            &[
                "//! Front matter naming [`crate::model::A`].",
                "// use crate::model::A;",
                "/// See [`crate::model::A`] and [A](crate::model::A).",
                "/* block crate::model::A /* nested crate::model::A */ still comment crate::model::A */",
                "const S: &str = \"crate::model::A \\\" crate::model::A\";",
                "const R: &str = r#\"crate::model::A \"quoted\" crate::model::A\"#;",
                "const Q: char = '\"'; // a quote character opens no string: crate::model::A",
                "fn id<'a>(x: &'a str) -> &'a str { x }",
                "#[cfg(test)]",
                "mod fixtures;",
                "#[cfg(test)]",
                "fn helper<T, U>() { crate::model::k() }",
                "#[cfg(test)]",
                "mod tests {",
                "    use crate::model::A;",
                "    #[test]",
                "    fn t() { let _ = crate::model::A; }",
                "}",
                "pub fn after() { crate::model::k() }",
            ],
        );
    // Only the last line is code; if anything above leaked or swallowed it, this changes.
    let failures = check_tree(&tree.src());
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("src/kernels/mod.rs:19 imports crate::model::k:"),
        "{failures:#?}"
    );
}

#[test]
fn two_file_circle_is_reported_but_a_child_reaching_its_front_door_is_not() {
    let tree = TempTree::new("circle");
    tree.write("model/mod.rs", &["pub mod a;", "pub mod b;"])
        .write("model/a.rs", &["use super::b::B;", "pub fn f() {}"])
        .write("model/b.rs", &["pub struct B;", "pub fn g() { super::a::f() }"]);
    let failures = check_tree(&tree.src());
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(failures[0].starts_with("2 files import each other in a circle: src/model/a.rs, src/model/b.rs"));
    assert!(
        failures[0].contains("\n    src/model/a.rs -> src/model/b.rs: B (line 1)"),
        "{}",
        failures[0]
    );
    assert!(
        failures[0].contains("\n    src/model/b.rs -> src/model/a.rs: f (line 2)"),
        "{}",
        failures[0]
    );

    let tree = TempTree::new("front-door");
    tree.write(
        "model/mod.rs",
        &["pub mod x;", "pub struct Error;", "pub fn run() { x::f(); }"],
    )
    .write("model/x.rs", &["use super::Error;", "pub fn f() -> Error { Error }"]);
    assert_passes(&tree);
}

#[test]
fn reexport_through_a_front_door_resolves_to_the_defining_file() {
    let tree = TempTree::new("reexport");
    tree.write("model/mod.rs", &["pub mod a;", "pub mod b;", "pub use b::B;"])
        .write("model/a.rs", &["use super::B;", "pub fn f() {}"])
        .write(
            "model/b.rs",
            &["use super::a::f;", "pub struct B;", "pub fn g() { f() }"],
        );
    let failures = check_tree(&tree.src());
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].contains("src/model/a.rs -> src/model/b.rs: B (line 1)"),
        "{}",
        failures[0]
    );
    assert!(
        failures[0].contains("src/model/b.rs -> src/model/a.rs: f (line 1)"),
        "{}",
        failures[0]
    );
}

#[test]
fn use_groups_self_renames_and_globs_parse_into_paths() {
    let parsed = parse_source(
        &[
            "use super::{a::B, c::{D, E}};",
            "pub(crate) use crate::x::{self, Y};",
            "use crate::z::W as V;",
            "use crate::g::*;",
            "use ::ext::Q;",
            "use std::fmt;",
            "fn f(x: u8) { super::activation::relu(x); self::g(); let v = Vec::<crate::m::T>::new(); x.y::<u8>(); }",
            "mod inner {",
            "    pub fn h() { super::super::up::k() }",
            "}",
        ]
        .join("\n"),
    );
    let described: Vec<String> = parsed
        .imports
        .iter()
        .map(|raw| {
            format!(
                "{:?} {} line {} scope {:?}",
                raw.kind,
                raw.written(),
                raw.line,
                raw.scope
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            "Use super::a::B line 1 scope []",
            "Use super::c::D line 1 scope []",
            "Use super::c::E line 1 scope []",
            "PubUse crate::x line 2 scope []",
            "PubUse crate::x::Y line 2 scope []",
            "Use crate::z::W as V line 3 scope []",
            "Use crate::g::* line 4 scope []",
            "Use ::ext::Q line 5 scope []",
            "Use std::fmt line 6 scope []",
            "Inline super::activation::relu line 7 scope []",
            "Inline self::g line 7 scope []",
            "Inline crate::m::T line 7 scope []",
            "Inline super::super::up::k line 9 scope [\"inner\"]",
        ]
    );
    let binds: Vec<Option<&str>> = parsed.imports.iter().take(6).map(|raw| raw.binds.as_deref()).collect();
    assert_eq!(
        binds,
        [Some("B"), Some("D"), Some("E"), Some("x"), Some("Y"), Some("V")]
    );
}

#[test]
fn cli_may_not_import_the_studio_but_main_may() {
    let tree = TempTree::new("binary");
    tree.write("lib.rs", &["pub mod model;", "pub mod ui;"])
        .write("model/mod.rs", &["pub struct M;"])
        .write("ui/mod.rs", &["pub struct Foo;"])
        .write(
            "main.rs",
            &["mod cli;", "use pathscope::ui::Foo;", "fn main() { cli::run() }"],
        )
        .write("cli/mod.rs", &["mod x;", "pub fn run() { x::go() }"])
        .write(
            "cli/x.rs",
            &["use pathscope::model::M;", "use pathscope::ui::Foo;", "pub fn go() {}"],
        );
    let failures = check_tree(&tree.src());
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(failures[0].starts_with("src/cli/x.rs:2 imports pathscope::ui::Foo: room cli may import only "));
    assert!(failures[0].ends_with(", not ui (rule: the command line is headless: no studio code)"));
}

#[test]
fn a_room_missing_from_the_table_is_reported() {
    let tree = TempTree::new("unknown-room");
    tree.write("plugins/mod.rs", &["pub fn p() {}"]);
    let failures = check_tree(&tree.src());
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(failures[0].starts_with("src/plugins/mod.rs is in room plugins, which has no row in ROOMS"));
}

#[test]
fn the_room_table_has_no_circle_and_a_circular_table_fails() {
    assert!(table_problems(ROOMS).is_empty(), "{:#?}", table_problems(ROOMS));
    let circular = [
        Room {
            name: "a",
            may_import: &["b"],
            rule: "",
        },
        Room {
            name: "b",
            may_import: &["c"],
            rule: "",
        },
        Room {
            name: "c",
            may_import: &["a", "d"],
            rule: "",
        },
    ];
    assert_eq!(
        table_problems(&circular),
        [
            "ROOMS: room c may import `d`, which has no row",
            "ROOMS has a circle among rooms a, b, c: each may import another that may import it back",
        ]
    );
}
