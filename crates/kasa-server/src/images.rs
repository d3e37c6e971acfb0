//! The pictures Kasa serves for in-store payments: the QR code of an EMV payload (what a
//! merchant's counter shows and a wallet scans) as SVG or PNG, and the Code 128 barcode of a
//! one-time payment code (what a wallet shows and a shop's scanner reads) as SVG.
//!
//! Every function is pure: the same input gives the same bytes (the QR mask is chosen by the
//! encoder's fixed penalty rule, the PNG carries no time or text chunk), so a picture may be
//! cached by its input. The QR matrix comes from `qrcodegen` (Nayuki's reference encoder, no
//! dependencies) and PNG files from `png`; Code 128 is drawn here, because code set C is a
//! table and a checksum, smaller than a crate for it.
//!
//! QR codes are always byte mode at error correction level M (15% of the symbol may be lost),
//! never raised to a higher level where the data would fit, so one payload always gives one
//! symbol; the payload's UTF-8 bytes go in without an ECI designator, as EMV payloads are
//! written and as wallets read them. A payload too long for level M (more than
//! [`QR_PAYLOAD_BYTES_MAX`] bytes) is refused with an error, never a panic.
//!
//! What it does not do: say what a payload means (that is `kasa_core::qr`), decode pictures,
//! choose sizes for a page (an SVG has a `viewBox` and no size, so CSS sizes it), or serve
//! HTTP.

use qrcodegen::{QrCode, QrCodeEcc, QrSegment, Version};
use std::fmt::Write as _;

/// The largest payload, in UTF-8 bytes, that a QR code holds in byte mode at level M (version
/// 40). `kasa_core::qr` accepts payloads of up to 4,096 characters; those longer than this
/// cannot be drawn.
pub const QR_PAYLOAD_BYTES_MAX: usize = 2331;
/// The light margin around a QR code, in modules: the 4 that ISO/IEC 18004 requires, without
/// which a scanner may not find the finder patterns against a dark counter.
pub const QR_QUIET_ZONE_MODULES: u32 = 4;
/// The largest pixels per module of a PNG: a version 40 code (185 modules with the quiet
/// zone) is then 5,920 pixels square, 4.4 MB of 1-bit pixels, already far beyond any screen.
pub const QR_PNG_SCALE_MAX: u32 = 32;

/// The light margin on each side of a Code 128 barcode, in modules: the 10 the standard
/// requires.
pub const CODE128_QUIET_ZONE_MODULES: u32 = 10;
/// The height of the bars, in modules: 60 modules is more than the standard's minimum (15% of
/// the width or 6.35 mm) for the 20-digit codes that are the use.
pub const CODE128_BAR_HEIGHT_MODULES: u32 = 60;
/// The most digits of a Code 128 barcode: payment codes have 18 to 20; 48 is GS1-128's limit,
/// beyond which scanners are no longer required to read a symbol.
pub const CODE128_DIGITS_MAX: usize = 48;

/// Why a QR code could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The payload does not fit in the largest QR code at level M.
    #[error("payload too long for a qr code: expected at most {max} bytes, found {found}")]
    PayloadTooLong {
        /// The payload's length in UTF-8 bytes.
        found: usize,
        /// [`QR_PAYLOAD_BYTES_MAX`].
        max: usize,
    },
    /// The PNG scale is 0 or above [`QR_PNG_SCALE_MAX`].
    #[error("png scale out of range: expected 1 to {max} pixels per module, found {found}")]
    Scale {
        /// The scale asked for.
        found: u32,
        /// [`QR_PNG_SCALE_MAX`].
        max: u32,
    },
}

/// The QR code of `payload` as an SVG document: a white `rect` and one black `path` of the
/// dark modules, each horizontal run as one rectangle (`M{x} {y}h{n}v1h-{n}z`), in a
/// `viewBox` of one unit per module, quiet zone included.
///
/// ```
/// let svg = kasa_server::images::qr_svg("00020101021126280007KR.KASA0106str_12").unwrap();
/// assert!(svg.starts_with("<svg") && svg.contains("shape-rendering=\"crispEdges\""));
/// ```
pub fn qr_svg(payload: &str) -> Result<String, ImageError> {
    Ok(svg_of(&qr_matrix(payload)?))
}

/// The QR code of a one-time payment code's digits, for a phone's screen, as [`qr_svg`]
/// draws it but made for speed, since a code is drawn for every payment: numeric mode (20
/// digits fit version 1, 21 modules a side, at level M) and a fixed mask (pattern 2), where
/// [`qr_svg`] tries all eight and keeps the one the standard scores best, which costs 20 times
/// as much. Any mask is a valid code, and readers take it from the code's format bits.
/// `None` for anything but 1 to 40 digits.
pub fn digits_qr_svg(digits: &str) -> Option<String> {
    if digits.is_empty() || digits.len() > 40 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let segments = [QrSegment::make_numeric(digits)];
    let mask = Some(qrcodegen::Mask::new(2));
    let code =
        QrCode::encode_segments_advanced(&segments, QrCodeEcc::Medium, Version::MIN, Version::MAX, mask, false).ok()?;
    Some(svg_of(&code))
}

/// `code` as an SVG document (see [`qr_svg`]).
fn svg_of(code: &QrCode) -> String {
    let side = qr_side(code);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\""
    );
    let quiet = QR_QUIET_ZONE_MODULES as i32;
    for y in 0..code.size() {
        let mut x = 0;
        while x < code.size() {
            if !code.get_module(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < code.size() && code.get_module(x, y) {
                x += 1;
            }
            let run = x - start;
            let _ = write!(svg, "M{} {}h{run}v1h-{run}z", start + quiet, y + quiet);
        }
    }
    svg.push_str("\"/></svg>");
    svg
}

/// The QR code of `payload` as a 1-bit greyscale PNG, `scale` pixels per module (1 to
/// [`QR_PNG_SCALE_MAX`]), quiet zone included.
pub fn qr_png(payload: &str, scale: u32) -> Result<Vec<u8>, ImageError> {
    if scale == 0 || scale > QR_PNG_SCALE_MAX {
        return Err(ImageError::Scale { found: scale, max: QR_PNG_SCALE_MAX });
    }
    let code = qr_matrix(payload)?;
    let side_px = qr_side(&code) * scale;
    let row_bytes = side_px.div_ceil(8) as usize;
    // Bits are pixels, most significant first; 1 is white, so the quiet zone and the padding
    // at the end of each row start out right.
    let mut pixels = vec![0xffu8; row_bytes * side_px as usize];
    let quiet = QR_QUIET_ZONE_MODULES as i32;
    for y_px in 0..side_px {
        let row = &mut pixels[y_px as usize * row_bytes..][..row_bytes];
        let y = (y_px / scale) as i32 - quiet;
        for x_px in 0..side_px {
            let x = (x_px / scale) as i32 - quiet;
            // get_module is false outside the symbol, which is the quiet zone.
            if code.get_module(x, y) {
                row[x_px as usize / 8] &= !(0x80 >> (x_px % 8));
            }
        }
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, side_px, side_px);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // Writing into a Vec cannot fail on I/O, and the buffer has exactly the size the header
    // says, so an error here is a bug in this function.
    let mut writer = encoder.write_header().expect("a png header of a bounded size is valid");
    writer.write_image_data(&pixels).expect("the pixel buffer matches the png header");
    writer.finish().expect("a complete png image finishes");
    Ok(png_bytes)
}

/// The matrix of `payload`: byte mode, level M exactly, the smallest version that holds it.
fn qr_matrix(payload: &str) -> Result<QrCode, ImageError> {
    let too_long = ImageError::PayloadTooLong { found: payload.len(), max: QR_PAYLOAD_BYTES_MAX };
    // Checked first so an over-long payload costs nothing: the encoder would refuse it too.
    if payload.len() > QR_PAYLOAD_BYTES_MAX {
        return Err(too_long);
    }
    let segments = [QrSegment::make_bytes(payload.as_bytes())];
    QrCode::encode_segments_advanced(&segments, QrCodeEcc::Medium, Version::MIN, Version::MAX, None, false)
        .map_err(|_| too_long)
}

/// The side of the picture of `code` in modules, quiet zone included.
fn qr_side(code: &QrCode) -> u32 {
    code.size() as u32 + 2 * QR_QUIET_ZONE_MODULES
}

/// Code 128's symbols as the widths of bar, space, bar, space, bar, space, in modules (11 in
/// all), by value: 0 to 102 are data (in code set C, the pairs `00` to `99`), 103 to 105 the
/// starts of code sets A, B and C.
#[rustfmt::skip]
const CODE128_PATTERNS: [[u8; 6]; 106] = [
    [2, 1, 2, 2, 2, 2], [2, 2, 2, 1, 2, 2], [2, 2, 2, 2, 2, 1], [1, 2, 1, 2, 2, 3], [1, 2, 1, 3, 2, 2], // 0
    [1, 3, 1, 2, 2, 2], [1, 2, 2, 2, 1, 3], [1, 2, 2, 3, 1, 2], [1, 3, 2, 2, 1, 2], [2, 2, 1, 2, 1, 3], // 5
    [2, 2, 1, 3, 1, 2], [2, 3, 1, 2, 1, 2], [1, 1, 2, 2, 3, 2], [1, 2, 2, 1, 3, 2], [1, 2, 2, 2, 3, 1], // 10
    [1, 1, 3, 2, 2, 2], [1, 2, 3, 1, 2, 2], [1, 2, 3, 2, 2, 1], [2, 2, 3, 2, 1, 1], [2, 2, 1, 1, 3, 2], // 15
    [2, 2, 1, 2, 3, 1], [2, 1, 3, 2, 1, 2], [2, 2, 3, 1, 1, 2], [3, 1, 2, 1, 3, 1], [3, 1, 1, 2, 2, 2], // 20
    [3, 2, 1, 1, 2, 2], [3, 2, 1, 2, 2, 1], [3, 1, 2, 2, 1, 2], [3, 2, 2, 1, 1, 2], [3, 2, 2, 2, 1, 1], // 25
    [2, 1, 2, 1, 2, 3], [2, 1, 2, 3, 2, 1], [2, 3, 2, 1, 2, 1], [1, 1, 1, 3, 2, 3], [1, 3, 1, 1, 2, 3], // 30
    [1, 3, 1, 3, 2, 1], [1, 1, 2, 3, 1, 3], [1, 3, 2, 1, 1, 3], [1, 3, 2, 3, 1, 1], [2, 1, 1, 3, 1, 3], // 35
    [2, 3, 1, 1, 1, 3], [2, 3, 1, 3, 1, 1], [1, 1, 2, 1, 3, 3], [1, 1, 2, 3, 3, 1], [1, 3, 2, 1, 3, 1], // 40
    [1, 1, 3, 1, 2, 3], [1, 1, 3, 3, 2, 1], [1, 3, 3, 1, 2, 1], [3, 1, 3, 1, 2, 1], [2, 1, 1, 3, 3, 1], // 45
    [2, 3, 1, 1, 3, 1], [2, 1, 3, 1, 1, 3], [2, 1, 3, 3, 1, 1], [2, 1, 3, 1, 3, 1], [3, 1, 1, 1, 2, 3], // 50
    [3, 1, 1, 3, 2, 1], [3, 3, 1, 1, 2, 1], [3, 1, 2, 1, 1, 3], [3, 1, 2, 3, 1, 1], [3, 3, 2, 1, 1, 1], // 55
    [3, 1, 4, 1, 1, 1], [2, 2, 1, 4, 1, 1], [4, 3, 1, 1, 1, 1], [1, 1, 1, 2, 2, 4], [1, 1, 1, 4, 2, 2], // 60
    [1, 2, 1, 1, 2, 4], [1, 2, 1, 4, 2, 1], [1, 4, 1, 1, 2, 2], [1, 4, 1, 2, 2, 1], [1, 1, 2, 2, 1, 4], // 65
    [1, 1, 2, 4, 1, 2], [1, 2, 2, 1, 1, 4], [1, 2, 2, 4, 1, 1], [1, 4, 2, 1, 1, 2], [1, 4, 2, 2, 1, 1], // 70
    [2, 4, 1, 2, 1, 1], [2, 2, 1, 1, 1, 4], [4, 1, 3, 1, 1, 1], [2, 4, 1, 1, 1, 2], [1, 3, 4, 1, 1, 1], // 75
    [1, 1, 1, 2, 4, 2], [1, 2, 1, 1, 4, 2], [1, 2, 1, 2, 4, 1], [1, 1, 4, 2, 1, 2], [1, 2, 4, 1, 1, 2], // 80
    [1, 2, 4, 2, 1, 1], [4, 1, 1, 2, 1, 2], [4, 2, 1, 1, 1, 2], [4, 2, 1, 2, 1, 1], [2, 1, 2, 1, 4, 1], // 85
    [2, 1, 4, 1, 2, 1], [4, 1, 2, 1, 2, 1], [1, 1, 1, 1, 4, 3], [1, 1, 1, 3, 4, 1], [1, 3, 1, 1, 4, 1], // 90
    [1, 1, 4, 1, 1, 3], [1, 1, 4, 3, 1, 1], [4, 1, 1, 1, 1, 3], [4, 1, 1, 3, 1, 1], [1, 1, 3, 1, 4, 1], // 95
    [1, 1, 4, 1, 3, 1], [3, 1, 1, 1, 4, 1], [4, 1, 1, 1, 3, 1], [2, 1, 1, 4, 1, 2], [2, 1, 1, 2, 1, 4], // 100
    [2, 1, 1, 2, 3, 2], // 105
];
/// The stop symbol with its final bar: 13 modules.
const CODE128_STOP: [u8; 7] = [2, 3, 3, 1, 1, 1, 2];
/// The value of the symbol that starts code set C.
const CODE128_START_C: u8 = 105;
/// The checksum's modulus.
const CODE128_CHECK_MODULUS: u32 = 103;

/// The Code 128 barcode of `digits` as an SVG document: code set C (start C, one symbol per
/// pair of digits, the mod 103 check symbol, stop), quiet zones of
/// [`CODE128_QUIET_ZONE_MODULES`], bars [`CODE128_BAR_HEIGHT_MODULES`] high as one `path`,
/// and the digits as text under the bars; one unit of the `viewBox` per module.
///
/// `None` unless `digits` is 2 to [`CODE128_DIGITS_MAX`] ASCII digits, an even number of
/// them (code set C has no symbol for a single digit, and payment codes are even).
///
/// ```
/// use kasa_server::images::code128_svg;
/// assert!(code128_svg("00123456789012345678").is_some());
/// assert_eq!(code128_svg("123"), None);
/// assert_eq!(code128_svg("12a4"), None);
/// ```
pub fn code128_svg(digits: &str) -> Option<String> {
    let bytes = digits.as_bytes();
    if bytes.is_empty()
        || bytes.len() > CODE128_DIGITS_MAX
        || !bytes.len().is_multiple_of(2)
        || !bytes.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut values = Vec::with_capacity(bytes.len() / 2 + 2);
    values.push(CODE128_START_C);
    values.extend(bytes.chunks_exact(2).map(|pair| (pair[0] - b'0') * 10 + (pair[1] - b'0')));
    // The start counts once, each symbol after it by its position.
    let weighted: u32 = values.iter().enumerate().map(|(i, &v)| i.max(1) as u32 * u32::from(v)).sum();
    values.push((weighted % CODE128_CHECK_MODULUS) as u8);

    let widths = values.iter().flat_map(|&v| CODE128_PATTERNS[usize::from(v)]).chain(CODE128_STOP);
    let quiet = CODE128_QUIET_ZONE_MODULES;
    let bars_height = CODE128_BAR_HEIGHT_MODULES;
    let mut path = String::new();
    let mut x = quiet;
    for (i, width) in widths.enumerate() {
        let width = u32::from(width);
        // Even positions are bars: every symbol has an even number of elements, and the stop
        // ends on a bar.
        if i % 2 == 0 {
            let _ = write!(path, "M{x} 0h{width}v{bars_height}h-{width}z");
        }
        x += width;
    }
    let symbols_width = x - quiet;
    debug_assert_eq!(symbols_width, 11 * values.len() as u32 + 13);
    let width = x + quiet;
    // Text 10 units high under the bars, with 2 units between; the digits need no escaping.
    let height = bars_height + 14;
    let (text_x, text_y) = (width / 2, bars_height + 11);
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{width}\" height=\"{height}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/>\
         <text x=\"{text_x}\" y=\"{text_y}\" font-family=\"monospace\" font-size=\"10\" text-anchor=\"middle\">{digits}</text></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's own rules: each symbol is 11 modules, its bars an even number of them and
    /// its spaces an odd number, and no two symbols are alike.
    #[test]
    fn images_code128_table_is_well_formed() {
        for (value, pattern) in CODE128_PATTERNS.iter().enumerate() {
            let modules: u8 = pattern.iter().sum();
            let bars: u8 = pattern.iter().step_by(2).sum();
            assert_eq!((modules, bars % 2), (11, 0), "symbol {value}");
            assert!(pattern.iter().all(|&w| (1..=4).contains(&w)), "symbol {value}");
        }
        let mut sorted = CODE128_PATTERNS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), CODE128_PATTERNS.len());
        assert_eq!(CODE128_STOP.iter().sum::<u8>(), 13);
    }

    /// A payload of exactly the capacity is drawn, one byte more is refused by the check
    /// before the encoder, and the encoder agrees with the constant.
    #[test]
    fn images_qr_capacity_is_the_constant() {
        let full = "a".repeat(QR_PAYLOAD_BYTES_MAX);
        assert_eq!(qr_matrix(&full).map(|code| code.version().value()).ok(), Some(40));
        let over = [0u8].repeat(QR_PAYLOAD_BYTES_MAX + 1);
        let segments = [QrSegment::make_bytes(&over)];
        let encoded =
            QrCode::encode_segments_advanced(&segments, QrCodeEcc::Medium, Version::MIN, Version::MAX, None, false);
        assert!(encoded.is_err());
    }
}
