//! [`FunctionStore::disk_usage_bytes`]: how much the data directory holds,
//! for the `wasmengine_data_dir_bytes` metric. Reads only.

use std::path::Path;

use super::FunctionStore;

impl FunctionStore {
    /// The bytes of every file under `functions/` (modules, the index, and
    /// any pending or temporary file of a change under way). Unreadable
    /// entries count as empty.
    pub fn disk_usage_bytes(&self) -> u64 {
        directory_bytes(&self.functions_dir, 0)
    }
}

/// The layout is two levels deep; a little slack, never unbounded.
const MAX_DEPTH: usize = 4;

fn directory_bytes(directory: &Path, depth: usize) -> u64 {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() && depth < MAX_DEPTH => {
                directory_bytes(&entry.path(), depth + 1)
            }
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |metadata| metadata.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_every_file_under_functions() {
        let dir = tempfile::tempdir().unwrap();
        let any_module = |_: &crate::function::FunctionName, _: bool, _: &[u8]| Ok(());
        let store = FunctionStore::open(dir.path(), &any_module).unwrap();
        assert_eq!(store.disk_usage_bytes(), 0);
        let name_dir = dir.path().join("functions/f");
        std::fs::create_dir_all(&name_dir).unwrap();
        std::fs::write(name_dir.join("f.wasm"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("functions/persist.json"), b"{}").unwrap();
        assert_eq!(store.disk_usage_bytes(), 102);
    }
}
