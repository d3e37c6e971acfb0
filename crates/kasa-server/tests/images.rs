//! The pictures of `kasa_server::images`, read back the way a scanner reads them: PNGs are
//! decoded with `png`, SVGs are rasterised by the small path interpreter below, then QR codes
//! are read with `rqrr` and barcodes with the Code 128 decoder below, whose table is the
//! standard's in its bit-string form. Nothing here looks at the encoders' matrices or tables,
//! so a picture that a scanner could not read fails here.

use kasa_core::qr::Value;
use kasa_server::images::{code128_svg, qr_png, qr_svg, ImageError, QR_PAYLOAD_BYTES_MAX, QR_PNG_SCALE_MAX};
use std::collections::BTreeMap;

/// The quiet zone ISO/IEC 18004 requires around a QR code, in modules.
const QR_QUIET_MODULES: usize = 4;
/// The quiet zone ISO/IEC 15417 requires on each side of a Code 128 barcode, in modules.
const CODE128_QUIET_MODULES: f64 = 10.0;

/// A greyscale picture, one byte a pixel, 0 black and 255 white.
struct Grey {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Grey {
    fn at(&self, x: usize, y: usize) -> u8 {
        self.pixels[y * self.width + x]
    }
}

/// A Kasa merchant's payload with its real CRC, from `kasa_core::qr::encode`.
fn emv(name: &str, city: &str, extra: &[(u8, Value)]) -> String {
    let mut fields = BTreeMap::new();
    fields.insert(0, Value::Text("01".into()));
    fields.insert(1, Value::Text("12".into()));
    let account = [(0, "KR.KASA".to_string()), (1, "str_12".to_string())];
    fields.insert(26, Value::Template(account.into_iter().collect()));
    fields.insert(52, Value::Text("5812".into()));
    fields.insert(53, Value::Text("410".into()));
    fields.insert(54, Value::Text("4500".into()));
    fields.insert(58, Value::Text("KR".into()));
    fields.insert(59, Value::Text(name.into()));
    fields.insert(60, Value::Text(city.into()));
    for (id, value) in extra {
        fields.insert(*id, value.clone());
    }
    kasa_core::qr::encode(&fields).expect("a valid payload")
}

/// The payloads every QR test draws: the plain one of the brief (its CRC left as `XXXX`: the
/// picture does not care), one with the merchant's Korean name, and one of about 300
/// characters with additional data.
fn payloads() -> Vec<String> {
    let korean = BTreeMap::from([(0, "ko".to_string()), (1, "카페 카사".to_string()), (2, "서울".to_string())]);
    let additional = BTreeMap::from([
        (1, "INV-2024-0000000000001".to_string()),
        (3, "Gangnam Station Exit 11".to_string()),
        (5, "ref_0123456789abcdef0123".to_string()),
        (7, "T-0042".to_string()),
    ]);
    let order = BTreeMap::from([
        (0, "KR.KASA.ORDER".to_string()),
        (1, "Two americanos, one croissant, one cheesecake slice, to go".to_string()),
    ]);
    let long = emv(
        "Cafe Kasa Gangnam Flagship",
        "Seoul",
        &[(62, Value::Template(additional)), (64, Value::Template(korean.clone())), (80, Value::Template(order))],
    );
    assert!((280..=340).contains(&long.chars().count()), "{} characters", long.chars().count());
    vec![
        "00020101021126280007KR.KASA0106str_125204581253034105802KR5909Cafe Kasa6304XXXX".to_string(),
        emv("Cafe Kasa", "Seoul", &[(64, Value::Template(korean))]),
        long,
    ]
}

/// Reads the one QR code in `picture`: its content and its `rqrr` metadata.
fn read_qr(picture: &Grey) -> (rqrr::MetaData, String) {
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(picture.width, picture.height, |x, y| picture.at(x, y));
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "expected one qr code in the picture");
    grids[0].decode().expect("the qr code decodes")
}

/// Checks what a QR picture must be besides its content: level M (format bits `00`, which
/// `rqrr` reports as 0), and a white quiet zone of 4 modules, `module_px` pixels each, around
/// a symbol whose size follows from its version.
fn check_qr_picture(picture: &Grey, meta: &rqrr::MetaData, module_px: usize) {
    assert_eq!(meta.ecc_level, 0, "error correction level M");
    let symbol_modules = 17 + 4 * meta.version.0;
    let side_px = (symbol_modules + 2 * QR_QUIET_MODULES) * module_px;
    assert_eq!((picture.width, picture.height), (side_px, side_px));
    let quiet_px = QR_QUIET_MODULES * module_px;
    for y in 0..side_px {
        for x in 0..side_px {
            let inside = (quiet_px..side_px - quiet_px).contains(&x) && (quiet_px..side_px - quiet_px).contains(&y);
            if !inside {
                assert_eq!(picture.at(x, y), 255, "quiet zone at ({x}, {y})");
            }
        }
    }
    // The finder pattern's corner is dark right where the quiet zone ends.
    assert_eq!(picture.at(quiet_px, quiet_px), 0);
}

fn decode_png(bytes: &[u8]) -> Grey {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    // 1-bit pixels come out as bytes 0 and 255.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a png header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a picture that fits in memory")];
    let frame = reader.next_frame(&mut pixels).expect("a png frame");
    assert_eq!((frame.color_type, frame.bit_depth), (png::ColorType::Grayscale, png::BitDepth::Eight));
    pixels.truncate(frame.buffer_size());
    Grey { width: frame.width as usize, height: frame.height as usize, pixels }
}

#[test]
fn qr_png_reads_back_as_its_payload() {
    for payload in payloads() {
        for scale in [1, 3, 8] {
            let picture = decode_png(&qr_png(&payload, scale).unwrap());
            let (meta, content) = read_qr(&picture);
            assert_eq!(content, payload, "scale {scale}");
            check_qr_picture(&picture, &meta, scale as usize);
        }
    }
}

#[test]
fn qr_svg_reads_back_as_its_payload() {
    for payload in payloads() {
        let svg = qr_svg(&payload).unwrap();
        assert!(svg.contains("shape-rendering=\"crispEdges\""));
        assert_eq!(svg.matches("<path").count(), 1, "one path");
        let picture = rasterise(&svg, 4);
        let (meta, content) = read_qr(&picture);
        assert_eq!(content, payload);
        check_qr_picture(&picture, &meta, 4);
    }
}

/// A payment code's QR code (numeric mode, a fixed mask) reads back as its digits, in
/// version 1; anything but digits is refused.
#[test]
fn digits_qr_svg_reads_back_as_its_digits() {
    for digits in ["97012345678901234567", "97000000000000000000", "97999999999999999999", "7"] {
        let svg = kasa_server::images::digits_qr_svg(digits).unwrap();
        let picture = rasterise(&svg, 4);
        let (meta, content) = read_qr(&picture);
        assert_eq!((meta.version.0, content.as_str()), (1, digits));
        check_qr_picture(&picture, &meta, 4);
    }
    for bad in ["", "97a", "9 7", &"1".repeat(41)] {
        assert_eq!(kasa_server::images::digits_qr_svg(bad), None, "{bad:?}");
    }
}

/// A short payload fits version 1 at level H too; it is still drawn at M, so that the level
/// (and the size of the symbol) does not depend on the payload's length.
#[test]
fn qr_is_level_m_where_a_higher_level_would_fit() {
    let svg = qr_svg("kasa").unwrap();
    let (meta, content) = read_qr(&rasterise(&svg, 4));
    assert_eq!((meta.version.0, meta.ecc_level, content.as_str()), (1, 0, "kasa"));
    let (meta, _) = read_qr(&decode_png(&qr_png("kasa", 4).unwrap()));
    assert_eq!((meta.version.0, meta.ecc_level), (1, 0));
}

#[test]
fn qr_pictures_are_the_same_bytes_every_time() {
    let payload = &payloads()[1];
    assert_eq!(qr_svg(payload).unwrap(), qr_svg(payload).unwrap());
    assert_eq!(qr_png(payload, 4).unwrap(), qr_png(payload, 4).unwrap());
}

/// The largest payload level M holds is drawn (version 40); one byte more, a 5,000-character
/// payload (over `kasa_core::qr`'s 4,096) or Korean text past the limit in bytes but not in
/// characters is refused with the length found, not a panic.
#[test]
fn qr_refuses_payloads_too_long_for_level_m() {
    let largest = "9".repeat(QR_PAYLOAD_BYTES_MAX);
    let picture = decode_png(&qr_png(&largest, 2).unwrap());
    let (meta, content) = read_qr(&picture);
    assert_eq!((meta.version.0, content.len()), (40, QR_PAYLOAD_BYTES_MAX));

    let korean = "카".repeat(QR_PAYLOAD_BYTES_MAX / 3 + 1);
    for payload in ["9".repeat(QR_PAYLOAD_BYTES_MAX + 1), "x".repeat(5_000), korean] {
        let expected = ImageError::PayloadTooLong { found: payload.len(), max: QR_PAYLOAD_BYTES_MAX };
        assert_eq!(qr_svg(&payload), Err(expected.clone()));
        assert_eq!(qr_png(&payload, 4), Err(expected));
    }
}

#[test]
fn qr_png_refuses_scales_out_of_range() {
    for scale in [0, QR_PNG_SCALE_MAX + 1, u32::MAX] {
        assert_eq!(qr_png("kasa", scale), Err(ImageError::Scale { found: scale, max: QR_PNG_SCALE_MAX }));
    }
    assert!(qr_png("kasa", QR_PNG_SCALE_MAX).is_ok());
}

#[test]
fn code128_reads_back_as_its_digits() {
    let codes = [
        "00000000000000000000",
        "00123456789012345678",
        "99999999999999999999",
        "12345678901234567890",
        "000000000000000001",
        "010203040506070809",
        "987654321098765432",
    ];
    for digits in codes {
        let svg = code128_svg(digits).unwrap();
        assert_eq!(svg_text(&svg), Some(digits), "the digits under the bars");
        let picture = rasterise(&svg, 2);
        // A scan line through the middle of the bars.
        let y = picture.height / 3;
        let row: Vec<bool> = (0..picture.width).map(|x| picture.at(x, y) < 128).collect();
        assert_eq!(decode_code128(&row), Ok(digits.to_string()));
    }
}

#[test]
fn code128_refuses_what_code_set_c_cannot_say() {
    for digits in ["", "1", "123", "1234567890123456789", "12345678901234567a", "１２", "12 34", "-12345", "12.4"] {
        assert_eq!(code128_svg(digits), None, "{digits:?}");
    }
    assert!(code128_svg(&"1".repeat(48)).is_some());
    assert_eq!(code128_svg(&"1".repeat(50)), None);
}

// ---- A Code 128 decoder, code set C only.

/// The 106 symbols as bit strings, a module a bit, 1 for bar: the form ISO/IEC 15417 tables
/// print, not the widths the encoder uses.
#[rustfmt::skip]
const CODE128: [&str; 106] = [
    "11011001100", "11001101100", "11001100110", "10010011000", "10010001100", "10001001100", // 0
    "10011001000", "10011000100", "10001100100", "11001001000", "11001000100", "11000100100", // 6
    "10110011100", "10011011100", "10011001110", "10111001100", "10011101100", "10011100110", // 12
    "11001110010", "11001011100", "11001001110", "11011100100", "11001110100", "11101101110", // 18
    "11101001100", "11100101100", "11100100110", "11101100100", "11100110100", "11100110010", // 24
    "11011011000", "11011000110", "11000110110", "10100011000", "10001011000", "10001000110", // 30
    "10110001000", "10001101000", "10001100010", "11010001000", "11000101000", "11000100010", // 36
    "10110111000", "10110001110", "10001101110", "10111011000", "10111000110", "10001110110", // 42
    "11101110110", "11010001110", "11000101110", "11011101000", "11011100010", "11011101110", // 48
    "11101011000", "11101000110", "11100010110", "11101101000", "11101100010", "11100011010", // 54
    "11101111010", "11001000010", "11110001010", "10100110000", "10100001100", "10010110000", // 60
    "10010000110", "10000101100", "10000100110", "10110010000", "10110000100", "10011010000", // 66
    "10011000010", "10000110100", "10000110010", "11000010010", "11001010000", "11110111010", // 72
    "11000010100", "10001111010", "10100111100", "10010111100", "10010011110", "10111100100", // 78
    "10011110100", "10011110010", "11110100100", "11110010100", "11110010010", "11011011110", // 84
    "11011110110", "11110110110", "10101111000", "10100011110", "10001011110", "10111101000", // 90
    "10111100010", "11110101000", "11110100010", "10111011110", "10111101110", "11101011110", // 96
    "11110101110", "11010000100", "11010010000", "11010011100", // 102
];
/// The stop symbol with its final bar.
const STOP: &str = "1100011101011";

/// Reads a scan line (true for bar): the quiet zones, widths to symbols, the start C, the
/// mod 103 check, the stop; the digits, or what was wrong.
fn decode_code128(row: &[bool]) -> Result<String, String> {
    let mut runs: Vec<usize> = Vec::new();
    let mut previous = None;
    for &bar in row {
        if previous == Some(bar) {
            *runs.last_mut().unwrap() += 1;
        } else {
            runs.push(1);
            previous = Some(bar);
        }
    }
    // Light, then elements starting and ending with a bar, then light.
    if row.first() != Some(&false) || row.last() != Some(&false) || runs.len() < 3 + 6 + 7 {
        return Err(format!("no barcode between quiet zones: {} runs", runs.len()));
    }
    let (leading, trailing) = (runs[0], runs[runs.len() - 1]);
    let elements = &runs[1..runs.len() - 1];
    if !(elements.len() - 7).is_multiple_of(6) {
        return Err(format!("{} elements is not symbols and a stop", elements.len()));
    }
    let (symbols, stop) = elements.split_at(elements.len() - 7);
    // The module width, from the whole symbol area (11 modules a symbol, 13 for the stop).
    let modules = symbols.len() / 6 * 11 + 13;
    let module_px = elements.iter().sum::<usize>() as f64 / modules as f64;
    let bits = |widths: &[usize]| -> String {
        let mut bits = String::new();
        for (i, &w) in widths.iter().enumerate() {
            let n = (w as f64 / module_px).round() as usize;
            bits.push_str(&(if i % 2 == 0 { "1" } else { "0" }).repeat(n));
        }
        bits
    };
    let quiet_min = CODE128_QUIET_MODULES * module_px;
    if (leading as f64) < quiet_min || (trailing as f64) < quiet_min {
        return Err(format!("quiet zones of {leading} and {trailing} pixels, under {quiet_min}"));
    }
    if bits(stop) != STOP {
        return Err(format!("no stop: {}", bits(stop)));
    }
    let mut values = Vec::new();
    for widths in symbols.chunks(6) {
        let pattern = bits(widths);
        let value = CODE128.iter().position(|&p| p == pattern).ok_or(format!("no symbol {pattern}"))?;
        values.push(value);
    }
    let (&start, rest) = values.split_first().unwrap();
    let (&check, data) = rest.split_last().ok_or("no check symbol")?;
    if start != 105 {
        return Err(format!("start {start}, not start C (105)"));
    }
    let sum = start + data.iter().enumerate().map(|(i, &v)| (i + 1) * v).sum::<usize>();
    if sum % 103 != check {
        return Err(format!("check symbol {check}, expected {}", sum % 103));
    }
    data.iter().map(|&v| if v < 100 { Ok(format!("{v:02}")) } else { Err(format!("symbol {v} in the data")) }).collect()
}

// ---- An SVG rasteriser for what these pictures use: `rect`, and `path` with M, L, H, V, Z
// (absolute and relative), filled with the nonzero rule; `text` is left out (it is under the
// bars, not in them).

/// Draws `svg` at `px_per_unit` pixels per unit of its `viewBox`, which must start at 0 0.
fn rasterise(svg: &str, px_per_unit: usize) -> Grey {
    let view_box: Vec<f64> = attr(element(svg, "svg"), "viewBox")
        .expect("a viewBox")
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect();
    assert_eq!(view_box[..2], [0.0, 0.0], "a viewBox starting at 0 0");
    let k = px_per_unit as f64;
    let (width, height) = ((view_box[2] * k).round() as usize, (view_box[3] * k).round() as usize);
    // Nothing painted is white: the page behind.
    let mut picture = Grey { width, height, pixels: vec![255; width * height] };
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let tag = &rest[start..];
        rest = &tag[1..];
        let name: String = tag[1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        match name.as_str() {
            "rect" => {
                let number = |name: &str| attr(tag, name).map_or(0.0, |v| v.parse::<f64>().unwrap());
                let (x, y) = (number("x"), number("y"));
                let rectangle = vec![
                    (x, y),
                    (x + number("width"), y),
                    (x + number("width"), y + number("height")),
                    (x, y + number("height")),
                ];
                fill(&mut picture, k, &[rectangle], colour(attr(tag, "fill")));
            }
            "path" => {
                let d = attr(tag, "d").expect("a path with d");
                fill(&mut picture, k, &subpaths(d), colour(attr(tag, "fill")));
            }
            "svg" | "text" | "" => {}
            other => panic!("an element this rasteriser does not draw: {other}"),
        }
    }
    picture
}

/// The text of the first `name` element's start tag.
fn element<'a>(svg: &'a str, name: &str) -> &'a str {
    let start = svg.find(&format!("<{name} ")).unwrap_or_else(|| panic!("no <{name}>"));
    let end = svg[start..].find('>').expect("a closed tag");
    &svg[start..start + end]
}

/// The value of attribute `name` in the start tag at the beginning of `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// The text inside the first `text` element.
fn svg_text(svg: &str) -> Option<&str> {
    let start = svg.find("<text")?;
    let open = start + svg[start..].find('>')? + 1;
    Some(&svg[open..open + svg[open..].find("</text>")?])
}

fn colour(fill: Option<&str>) -> u8 {
    match fill {
        // SVG's default fill is black.
        None | Some("#000" | "#000000" | "black") => 0,
        Some("#fff" | "#ffffff" | "white") => 255,
        Some(other) => panic!("a fill this rasteriser does not know: {other}"),
    }
}

/// The closed subpaths of a path's `d`, as their corners.
fn subpaths(d: &str) -> Vec<Vec<(f64, f64)>> {
    let mut tokens = Vec::new();
    let mut number = String::new();
    for c in d.chars() {
        let starts_number = c == '-' && !number.is_empty();
        let ends_number = c.is_ascii_alphabetic() || c.is_whitespace() || c == ',' || starts_number;
        if ends_number && !number.is_empty() {
            tokens.push(Token::Number(number.parse().expect("a number")));
            number.clear();
        }
        if c.is_ascii_alphabetic() {
            tokens.push(Token::Command(c));
        } else if c.is_ascii_digit() || c == '.' || c == '-' {
            number.push(c);
        }
    }
    if !number.is_empty() {
        tokens.push(Token::Number(number.parse().expect("a number")));
    }

    let mut paths: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let (mut x, mut y) = (0.0, 0.0);
    let mut command = ' ';
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        let first = match token {
            Token::Command(c) if c.eq_ignore_ascii_case(&'z') => {
                // Closing returns to the subpath's first point, where a relative move starts.
                if let Some(&first) = current.first() {
                    (x, y) = first;
                }
                if current.len() > 2 {
                    paths.push(std::mem::take(&mut current));
                }
                current.clear();
                continue;
            }
            Token::Command(c) => {
                command = c;
                None
            }
            // A number after a command's arguments repeats it (a line after a move).
            Token::Number(n) => Some(n),
        };
        let mut next_number = |first: Option<f64>| -> f64 {
            first.unwrap_or_else(|| match tokens.next() {
                Some(Token::Number(n)) => n,
                other => panic!("expected a number after {command}, found {other:?}"),
            })
        };
        let relative = command.is_ascii_lowercase();
        let (base_x, base_y) = if relative { (x, y) } else { (0.0, 0.0) };
        match command.to_ascii_lowercase() {
            'm' | 'l' => {
                let (dx, dy) = (next_number(first), next_number(None));
                (x, y) = (base_x + dx, base_y + dy);
                if command.eq_ignore_ascii_case(&'m') {
                    if current.len() > 2 {
                        paths.push(std::mem::take(&mut current));
                    }
                    current.clear();
                    command = if relative { 'l' } else { 'L' };
                }
                current.push((x, y));
            }
            'h' => {
                x = base_x + next_number(first);
                current.push((x, y));
            }
            'v' => {
                y = base_y + next_number(first);
                current.push((x, y));
            }
            other => panic!("a path command this rasteriser does not know: {other}"),
        }
    }
    if current.len() > 2 {
        paths.push(current);
    }
    paths
}

#[derive(Debug)]
enum Token {
    Command(char),
    Number(f64),
}

/// Fills `polygons` with `shade` by the nonzero rule, sampling each pixel at its centre.
fn fill(picture: &mut Grey, k: f64, polygons: &[Vec<(f64, f64)>], shade: u8) {
    let edges: Vec<((f64, f64), (f64, f64))> = polygons
        .iter()
        .flat_map(|corners| corners.iter().zip(corners.iter().cycle().skip(1)).map(|(&a, &b)| (a, b)))
        .filter(|((_, y0), (_, y1))| y0 != y1)
        .collect();
    for py in 0..picture.height {
        let yc = (py as f64 + 0.5) / k;
        let mut crossings: Vec<(f64, i32)> = edges
            .iter()
            .filter(|((_, y0), (_, y1))| y0.min(*y1) <= yc && yc < y0.max(*y1))
            .map(|&((x0, y0), (x1, y1))| (x0 + (yc - y0) * (x1 - x0) / (y1 - y0), if y1 > y0 { 1 } else { -1 }))
            .collect();
        crossings.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut winding = 0;
        for pair in crossings.windows(2) {
            winding += pair[0].1;
            if winding == 0 {
                continue;
            }
            let from = ((pair[0].0 * k - 0.5).ceil().max(0.0)) as usize;
            let to = ((pair[1].0 * k - 0.5).ceil().max(0.0) as usize).min(picture.width);
            for px in from..to {
                picture.pixels[py * picture.width + px] = shade;
            }
        }
    }
}

/// The rasteriser itself, on a picture with a known answer: a 2 by 1 bar drawn relatively
/// beside a 1 by 2 bar drawn absolutely, on white.
#[test]
fn rasteriser_draws_known_shapes() {
    let svg =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 4 3\"><rect width=\"4\" height=\"3\" fill=\"#fff\"/>\
               <path d=\"M0 0h2v1h-2z M3 1L4 1L4 3L3 3Z\"/></svg>";
    let picture = rasterise(svg, 2);
    let ascii: Vec<String> = (0..picture.height)
        .map(|y| (0..picture.width).map(|x| if picture.at(x, y) == 0 { '#' } else { '.' }).collect())
        .collect();
    assert_eq!(ascii, ["####....", "####....", "......##", "......##", "......##", "......##"]);
}
