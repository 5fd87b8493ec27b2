//! The import graph of `src/`, read from the sources: the layering
//! ARCHITECTURE.md promises is checked here, so that a `use` pointing back
//! up fails a test instead of waiting for a reader to notice.
//!
//! Each file is a node (`src/api/server.rs` is `api::server`, a `mod.rs` is
//! its folder's module). An arrow goes from a file to the module a
//! `crate::` or `super::` path in it names (the longest prefix of the path
//! that is a module). Comments and `#[cfg(test)]` code are not read. An
//! entry file's arrows to its own submodules are its table of contents
//! (`mod x; pub use x::Y;`), not imports, so they are not arrows here.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "main.rs" if parts.is_empty() => None,
        "lib.rs" if parts.is_empty() => Some(parts),
        "mod.rs" => Some(parts),
        _ => {
            parts.push(last.strip_suffix(".rs")?.to_owned());
            Some(parts)
        }
    }
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|entry| entry.expect("src/ entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]`
/// items (everything from the first one on: tests sit at the end).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads a path (or a `use` tree) starting at `rest`, pushing every full
/// path it names onto `paths`; returns how many bytes it read.
fn read_tree(rest: &str, prefix: &[String], paths: &mut Vec<Vec<String>>) -> usize {
    let mut segments = prefix.to_vec();
    let mut at = 0;
    loop {
        let tail = &rest[at..];
        let skipped = tail.len() - tail.trim_start().len();
        at += skipped;
        let tail = &rest[at..];
        if let Some(inner) = tail.strip_prefix('{') {
            at += 1;
            let mut consumed_inner = 0;
            loop {
                let inner_tail = &inner[consumed_inner..];
                let trimmed = inner_tail.trim_start();
                consumed_inner += inner_tail.len() - trimmed.len();
                if trimmed.starts_with('}') {
                    consumed_inner += 1;
                    break;
                }
                if trimmed.starts_with(',') {
                    consumed_inner += 1;
                    continue;
                }
                if trimmed.is_empty() {
                    break;
                }
                let read = read_tree(&inner[consumed_inner..], &segments, paths);
                if read == 0 {
                    consumed_inner += trimmed.chars().next().map_or(1, char::len_utf8);
                }
                consumed_inner += read;
            }
            return at + consumed_inner;
        }
        let ident_len = tail
            .char_indices()
            .find(|&(_, c)| !is_ident_char(c))
            .map_or(tail.len(), |(index, _)| index);
        if ident_len == 0 {
            break;
        }
        let ident = &tail[..ident_len];
        at += ident_len;
        if ident == "self" {
            // `{self, ..}` names the path the group hangs from.
            paths.push(segments.clone());
        } else {
            segments.push(ident.to_owned());
        }
        if rest[at..].starts_with("::") {
            at += 2;
        } else {
            break;
        }
    }
    if segments.len() > prefix.len() {
        paths.push(segments);
    }
    at
}

/// Every module a file's code names through `crate::` or `super::`.
fn imports_of(module: &Module, code: &str, modules: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut paths = Vec::new();
    let mut index = 0;
    while index < code.len() {
        let rest = &code[index..];
        let boundary = code[..index]
            .chars()
            .next_back()
            .is_none_or(|c| !is_ident_char(c) && c != ':');
        let base: Option<(Module, usize)> = if boundary && rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if boundary && rest.starts_with("super::") {
            let mut base = module.clone();
            let mut skip = 0;
            while rest[skip..].starts_with("super::") {
                base.pop();
                skip += "super::".len();
            }
            Some((base, skip))
        } else {
            None
        };
        match base {
            Some((base, skip)) => {
                let read = read_tree(&rest[skip..], &base, &mut paths);
                index += skip + read.max(1);
            }
            None => index += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    let mut targets = BTreeSet::new();
    for path in paths {
        let target = (0..=path.len())
            .rev()
            .map(|len| path[..len].to_vec())
            .find(|prefix| modules.contains(prefix))
            .unwrap_or_default();
        let own_submodule = target.len() > module.len() && target.starts_with(module);
        if &target != module && !own_submodule {
            targets.insert(target);
        }
    }
    targets
}

fn import_graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let sources: Vec<(Module, String)> = files
        .iter()
        .filter_map(|file| {
            let module = module_of(&src, file)?;
            let text = fs::read_to_string(file).expect("source file is readable");
            Some((module, code_of(&text)))
        })
        .collect();
    let modules: BTreeSet<Module> = sources.iter().map(|(module, _)| module.clone()).collect();
    sources
        .iter()
        .map(|(module, code)| (module.clone(), imports_of(module, code, &modules)))
        .collect()
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// The graph's circles: strongly connected components of more than one
/// module (Tarjan's algorithm), each as sorted module names.
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        on_stack: BTreeSet<&'g Module>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, node: &'g Module) {
            let number = self.index.len();
            self.index.insert(node, number);
            self.low.insert(node, number);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let Some((next, _)) = self.graph.get_key_value(next) else {
                    continue;
                };
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    component.push(name(member));
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found.sort();
    walk.found
}

#[test]
fn the_reader_sees_use_trees_super_chains_and_inline_paths() {
    let modules: BTreeSet<Module> = [
        vec![],
        vec!["api".to_owned()],
        vec!["api".to_owned(), "server".to_owned()],
        vec!["api".to_owned(), "answer".to_owned()],
        vec!["service".to_owned()],
        vec!["metrics".to_owned()],
    ]
    .into_iter()
    .collect();
    let module = vec!["api".to_owned(), "answer".to_owned()];
    let code = "use super::{server::Shared, self};\nuse crate::service::{self, X};\nfn f() { crate::metrics::count(); let url = \"http://x\"; }\n";
    let names: Vec<String> = imports_of(&module, code, &modules)
        .iter()
        .map(name)
        .collect();
    assert_eq!(names, ["api", "api::server", "metrics", "service"]);
}

/// The one circle left: the files of `src/api/` that import each
/// other (issue 27 takes it apart; then this list is empty). Any other
/// circle, or a new member of this one, fails the test.
const KNOWN_CIRCLES: &[&[&str]] = &[&[
    "api::answer",
    "api::auth",
    "api::error",
    "api::http_answer",
    "api::ignored",
    "api::observe",
    "api::provider",
    "api::request",
    "api::response",
    "api::route",
    "api::seed",
    "api::server",
]];

#[test]
fn no_two_modules_of_src_import_each_other() {
    let graph = import_graph();
    assert!(graph.len() > 20, "src/ was not read: {} files", graph.len());
    let found = circles(&graph);
    let known: Vec<Vec<String>> = KNOWN_CIRCLES
        .iter()
        .map(|circle| circle.iter().map(|name| (*name).to_owned()).collect())
        .collect();
    assert_eq!(
        found, known,
        "circles in the import graph of src/ (each module in a line reaches every other)"
    );
}
