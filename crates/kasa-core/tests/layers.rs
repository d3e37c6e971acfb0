//! The core's modules form layers: no module reaches (through `crate::...` paths, directly or
//! through others) a module that reaches it. Read from the sources, so a new import that
//! closes a circle fails here with the circle named. The body of the `domains!` macro is left
//! out: it expands in `command.rs`, the registry, and is counted there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every top-level module of the core with the modules its code names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        let module = relative.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        if let Some(macro_at) = text.find("macro_rules! domains") {
            text.truncate(macro_at);
        }
        let named = imports.entry(module.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        let name = item.trim().split("::").next().unwrap_or("").trim();
                        if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !name.is_empty() {
                            named.insert(name.to_string());
                        }
                    }
                } else {
                    let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !name.is_empty() && rest[name.len()..].starts_with("::") {
                        named.insert(name);
                    }
                }
            }
        }
        named.remove(&module);
    }
    imports
}

#[test]
fn no_module_of_the_core_imports_one_that_imports_it() {
    let imports = imports();
    assert!(imports.len() >= 15, "the scan found the modules: {:?}", imports.keys());
    assert!(imports["wallet"].contains("domain"), "the scan sees imports: {:?}", imports["wallet"]);
    for start in imports.keys() {
        // Depth-first from `start`, keeping the path, looking for a way back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((module, path)) = stack.pop() {
            for next in imports.get(&module).into_iter().flatten() {
                let mut longer = path.clone();
                longer.push(next.clone());
                assert!(next != start, "a circle of imports: {}", longer.join(" -> "));
                if seen.insert(next.clone()) {
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
}

/// The QR codec sits in the bottom layer with `codec` and `text`: it may name money (the
/// currency of field 53) and nothing else, so no domain can leak into a pure parser.
#[test]
fn the_qr_codec_imports_only_money() {
    let imports = imports();
    let qr = &imports["qr"];
    assert!(qr.contains("money"), "the scan sees qr's imports: {qr:?}");
    assert!(qr.iter().all(|module| module == "money"), "qr imports {qr:?}");
}

/// FX sits beside `qr` in the bottom layer: rates and quotes name money and nothing else, so
/// the arithmetic stays pure and any domain may call it.
#[test]
fn the_fx_module_imports_only_money() {
    let imports = imports();
    let fx = &imports["fx"];
    assert!(fx.contains("money"), "the scan sees fx's imports: {fx:?}");
    assert!(fx.iter().all(|module| module == "money"), "fx imports {fx:?}");
}
