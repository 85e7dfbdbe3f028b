//! Minimal path globbing for `include`/`exclude`: `*`, `?` and `[abc]`/`[a-z]`/`[!x]`
//! within one path component, and `**` for any number of directories. Written here
//! because the agent needs only this and it keeps the dependency tree small.

use std::path::{Path, PathBuf};

/// Whether one path component matches one pattern component.
pub fn component_matches(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    // Backtracking point for the last `*`: (pattern index after it, name index).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&pat[p..], name[n]) {
                        if matched {
                            p += next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pat`: (matches, length of the class) or `None`
/// when the bracket is not closed (then it is a literal `[`).
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(1), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
            if pat[i] <= c && c <= pat[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if pat[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Whether a whole path matches a pattern (used for `exclude`).
pub fn path_matches(pattern: &str, path: &Path) -> bool {
    let pats: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let text = path.to_string_lossy();
    let names: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
    match_parts(&pats, &names)
}

fn match_parts(pats: &[&str], names: &[&str]) -> bool {
    match pats.split_first() {
        None => names.is_empty(),
        Some((&"**", rest)) => (0..=names.len()).any(|k| match_parts(rest, &names[k..])),
        Some((p, rest)) => match names.split_first() {
            Some((n, nrest)) => {
                component_matches(p.as_bytes(), n.as_bytes()) && match_parts(rest, nrest)
            }
            None => false,
        },
    }
}

/// All regular files matching `pattern` (an absolute or relative path pattern).
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let root = if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    };
    let parts: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    walk(&root, &parts, &mut out);
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, parts: &[&str], out: &mut Vec<PathBuf>) {
    let Some((first, rest)) = parts.split_first() else {
        if dir.is_file() {
            out.push(dir.to_owned());
        }
        return;
    };
    if *first == "**" {
        walk(dir, rest, out);
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), parts, out);
                }
            }
        }
        return;
    }
    if !has_magic(first) {
        let next = dir.join(first);
        if rest.is_empty() {
            if next.is_file() {
                out.push(next);
            }
        } else if next.is_dir() {
            walk(&next, rest, out);
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if component_matches(first.as_bytes(), name.as_encoded_bytes()) {
            walk(&e.path(), rest, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        assert!(component_matches(b"*.log", b"app.log"));
        assert!(!component_matches(b"*.log", b"app.log.1"));
        assert!(component_matches(b"*.log*", b"app.log.1"));
        assert!(component_matches(b"a?c", b"abc"));
        assert!(component_matches(b"[0-9].log", b"7.log"));
        assert!(!component_matches(b"[!0-9].log", b"7.log"));
        assert!(component_matches(b"*", b""));
    }

    #[test]
    fn whole_paths() {
        assert!(path_matches(
            "/var/log/**/*.gz",
            Path::new("/var/log/a/b/x.gz")
        ));
        assert!(path_matches("/var/log/*.gz", Path::new("/var/log/x.gz")));
        assert!(!path_matches("/var/log/*.gz", Path::new("/var/log/a/x.gz")));
    }
}
