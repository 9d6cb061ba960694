//! NumPy `.npy` (format 1.0) for float32 arrays: what researchers load with `np.load`.

/// Serialises a C-ordered float32 array of `shape`.
pub fn npy_f32_bytes(data: &[f32], shape: &[usize]) -> Vec<u8> {
    let shape_str = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a
    // multiple of 64 and ended by a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads back a float32 `.npy` written by [`npy_f32_bytes`] (or NumPy): (data, shape).
pub fn parse_npy_f32(bytes: &[u8]) -> Result<(Vec<f32>, Vec<usize>), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(bytes.get(10..10 + hlen).ok_or("truncated header")?).map_err(|e| e.to_string())?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(format!("unsupported array: {header}"));
    }
    let s = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .ok_or("no shape")?;
    let shape: Vec<usize> = s
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<usize>().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let body = &bytes[10 + hlen..];
    // Checked: a damaged header can claim a shape whose size overflows (found by fuzzing).
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|n| n.checked_mul(4).is_some())
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    if body.len() != n * 4 {
        return Err(format!("expected {n} values, found {} bytes", body.len()));
    }
    Ok((
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        shape,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_round_trips() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b = npy_f32_bytes(&data, &[2, 3, 4]);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(b[10 + hlen - 1], b'\n');
        let (d, s) = parse_npy_f32(&b).unwrap();
        assert_eq!(s, vec![2, 3, 4]);
        assert_eq!(d, data);
        let (_, s1) = parse_npy_f32(&npy_f32_bytes(&[1.0, 2.0], &[2])).unwrap();
        assert_eq!(s1, vec![2]);
    }

    #[test]
    fn a_shape_whose_size_overflows_is_an_error() {
        // Found by the `npy` fuzz target: the product of the dimensions overflowed.
        let mut b = npy_f32_bytes(&[1.0], &[1]);
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }";
        let mut h = header.as_bytes().to_vec();
        h.push(b'\n');
        b.truncate(8);
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(&h);
        b.extend_from_slice(&[0; 4]);
        let err = parse_npy_f32(&b).unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }
}
