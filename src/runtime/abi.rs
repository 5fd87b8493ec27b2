//! Deciding how a module is called: [`Abi`] and the deploy-time checks that
//! pick it (imports, exports, the export's type, parameter names).

use wasmi::{ExternType, FuncType, Module, ValType};

use super::error::RuntimeError;

/// How an invocation calls a deployed module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Abi {
    /// `f(ptr, len) -> (ptr, len)` or `f(ptr, len) -> ptr << 32 | len` over
    /// UTF-8 JSON in linear memory.
    String(StringReturn),
    /// Numbers in, numbers out.
    Numeric {
        params: Vec<ValType>,
        /// Parameter names from the module's name section, when it names
        /// every parameter with distinct non-empty names.
        param_names: Option<Vec<String>>,
    },
    /// A WASI preview 1 command: `_start` with argv, stdin and stdout.
    Wasi,
}

/// How a string-ABI function hands back its output's `(ptr, len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringReturn {
    /// Two `i32` results, `(ptr, len)`: the reference engine's shape, which
    /// clang's multi-value ABI produces.
    TwoResults,
    /// One `i64`, `ptr << 32 | len`: what stable Rust and plain C can export.
    Packed,
}

impl Abi {
    /// `string ABI echo(i32, i32) -> i64`, `numeric ABI gcd(i32, i32) -> i32`,
    /// `WASI command`: how logs name the ABI of the export `function`.
    pub fn describe(&self, module: &Module, function: &str) -> String {
        let kind = match self {
            Self::Wasi => return "WASI command".to_owned(),
            Self::String(_) => "string",
            Self::Numeric { .. } => "numeric",
        };
        match module.get_export(function) {
            Some(ExternType::Func(ty)) => format!("{kind} ABI {function}{}", signature_short(&ty)),
            _ => format!("{kind} ABI {function}"),
        }
    }
}

pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Refuses any import but the engine's own host module: modules deployed
/// with `wasi_cap: false` must be self-contained.
pub fn check_no_imports(module: &Module, function: &str) -> Result<(), RuntimeError> {
    match module
        .imports()
        .find(|import| !super::host::provided(import.module()))
    {
        None => Ok(()),
        Some(import) if import.module() == WASI_MODULE => Err(RuntimeError::NeedsWasi {
            function: function.to_owned(),
        }),
        Some(import) => Err(RuntimeError::UnsupportedImport {
            module: import.module().to_owned(),
            name: import.name().to_owned(),
            wasi_cap: false,
        }),
    }
}

/// Picks the ABI of a non-WASI module from the type of the export named `function`.
pub fn classify_export(module: &Module, function: &str, wasm: &[u8]) -> Result<Abi, RuntimeError> {
    let ty = match module.get_export(function) {
        Some(ExternType::Func(ty)) => ty,
        _ => {
            let exports = module
                .exports()
                .map(|export| match export.ty() {
                    ExternType::Func(ty) => format!("{} {}", export.name(), signature(ty)),
                    other => format!("{} ({})", export.name(), extern_kind(other)),
                })
                .collect();
            return Err(RuntimeError::MissingExport {
                function: function.to_owned(),
                exports,
            });
        }
    };
    let is_number = |ty: &ValType| {
        matches!(
            ty,
            ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
        )
    };
    let pointer_and_length = ty.params() == [ValType::I32, ValType::I32];
    if pointer_and_length && ty.results() == [ValType::I32, ValType::I32] {
        require_memory(module, function)?;
        Ok(Abi::String(StringReturn::TwoResults))
    } else if pointer_and_length && ty.results() == [ValType::I64] {
        require_memory(module, function)?;
        Ok(Abi::String(StringReturn::Packed))
    } else if ty.params().iter().all(is_number) && ty.results().iter().all(is_number) {
        Ok(Abi::Numeric {
            params: ty.params().to_vec(),
            param_names: param_names(wasm, function, ty.params().len()),
        })
    } else {
        Err(RuntimeError::UnsupportedSignature {
            function: function.to_owned(),
            signature: signature(&ty),
        })
    }
}

/// The checks a WASI command must pass besides its imports.
pub fn check_wasi_exports(module: &Module, function: &str) -> Result<(), RuntimeError> {
    match module.get_export("_start") {
        Some(ExternType::Func(ty)) if ty.params().is_empty() && ty.results().is_empty() => {}
        _ => {
            return Err(RuntimeError::MissingStart {
                function: function.to_owned(),
            });
        }
    }
    require_memory(module, function)
}

fn require_memory(module: &Module, function: &str) -> Result<(), RuntimeError> {
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => Ok(()),
        _ => Err(RuntimeError::MissingMemory {
            function: function.to_owned(),
        }),
    }
}

/// `(i32, i32) -> (i32, i32)`.
pub fn signature(ty: &FuncType) -> String {
    let list = |types: &[ValType]| {
        types
            .iter()
            .map(|ty| format!("{ty:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(ty.params()), list(ty.results()))
}

/// `(i32, i32) -> i32`: as [`signature`], without parentheses around a
/// single result.
fn signature_short(ty: &FuncType) -> String {
    let full = signature(ty);
    match ty.results() {
        [_] => {
            let (params, result) = full.split_once(" -> ").unwrap_or((&full, "()"));
            format!(
                "{params} -> {}",
                result.trim_start_matches('(').trim_end_matches(')')
            )
        }
        _ => full,
    }
}

fn extern_kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "function",
        ExternType::Memory(_) => "memory",
        ExternType::Table(_) => "table",
        ExternType::Global(_) => "global",
    }
}

/// Reads the parameter names of the export `function` from the name section.
/// `None` unless all `count` parameters have distinct non-empty names.
fn param_names(wasm: &[u8], function: &str, count: usize) -> Option<Vec<String>> {
    use wasmparser::{ExternalKind, KnownCustom, Name, Parser, Payload};

    let mut function_index = None;
    let mut names: Vec<(u32, String)> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.ok()?;
                    if export.name == function && export.kind == ExternalKind::Func {
                        function_index = Some(export.index);
                    }
                }
            }
            Payload::CustomSection(reader) => {
                let KnownCustom::Name(name_reader) = reader.as_known() else {
                    continue;
                };
                let index = function_index?;
                for subsection in name_reader {
                    let Ok(Name::Local(map)) = subsection else {
                        continue;
                    };
                    for indirect in map {
                        let indirect = indirect.ok()?;
                        if indirect.index != index {
                            continue;
                        }
                        for naming in indirect.names {
                            let naming = naming.ok()?;
                            names.push((naming.index, naming.name.to_owned()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut params: Vec<String> = Vec::with_capacity(count);
    for index in 0..u32::try_from(count).ok()? {
        let name = names
            .iter()
            .find(|(local, name)| *local == index && !name.is_empty())?;
        if params.contains(&name.1) {
            return None;
        }
        params.push(name.1.clone());
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(wat: &str, function: &str, count: usize) -> Option<Vec<String>> {
        param_names(&wat::parse_str(wat).expect("valid WAT"), function, count)
    }

    fn classify(wat: &str, function: &str) -> Result<Abi, RuntimeError> {
        let wasm = wat::parse_str(wat).expect("valid WAT");
        let engine = wasmi::Engine::default();
        let module = Module::new(&engine, &wasm).expect("a valid module");
        classify_export(&module, function, &wasm)
    }

    #[test]
    fn parameter_names_come_from_the_name_section_of_the_export() {
        let wat = r#"(module
            (func $helper (param $x i32) (param $y i32))
            (func (export "gcd") (param $a i32) (param $b i32) (result i32) (local $t i32)
              (local.get $a)))"#;
        // The export's own names, not the helper's before it.
        assert_eq!(names(wat, "gcd", 2), Some(vec!["a".into(), "b".into()]));
        assert_eq!(names(wat, "nothere", 2), None);
    }

    #[test]
    fn parameters_named_only_in_part_or_not_at_all_have_no_names() {
        let partly = r#"(module (func (export "f") (param $a i32) (param i32)))"#;
        assert_eq!(names(partly, "f", 2), None);
        let unnamed = r#"(module (func (export "f") (param i32 i32)))"#;
        assert_eq!(names(unnamed, "f", 2), None);
        let no_parameters = r#"(module (func (export "f")))"#;
        assert_eq!(names(no_parameters, "f", 0), Some(vec![]));
    }

    #[test]
    fn a_module_without_a_name_section_has_no_names() {
        // The binary format written by hand: one function `(i32) -> ()`
        // exported as "f", no custom sections.
        let wasm = [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
            0x01, 0x05, 0x01, 0x60, 0x01, 0x7f, 0x00, // type section
            0x03, 0x02, 0x01, 0x00, // function section
            0x07, 0x05, 0x01, 0x01, b'f', 0x00, 0x00, // export section
            0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section
        ];
        assert_eq!(param_names(&wasm, "f", 1), None);
        assert_eq!(param_names(b"not wasm", "f", 1), None);
    }

    #[test]
    fn the_export_signature_picks_the_abi() {
        let with_memory = |func: &str| format!(r#"(module (memory (export "memory") 1) {func})"#);
        let two_results = with_memory(
            r#"(func (export "f") (param i32 i32) (result i32 i32) (local.get 0) (local.get 1))"#,
        );
        assert_eq!(
            classify(&two_results, "f").unwrap(),
            Abi::String(StringReturn::TwoResults)
        );
        let packed =
            with_memory(r#"(func (export "f") (param i32 i32) (result i64) (i64.const 0))"#);
        assert_eq!(
            classify(&packed, "f").unwrap(),
            Abi::String(StringReturn::Packed)
        );
        // Two i32 in and one i32 out is numbers, not strings.
        let numeric = r#"(module (func (export "f") (param $a i32) (param $b i32) (result i32) (local.get 0)))"#;
        assert_eq!(
            classify(numeric, "f").unwrap(),
            Abi::Numeric {
                params: vec![ValType::I32, ValType::I32],
                param_names: Some(vec!["a".into(), "b".into()]),
            }
        );
        // The string shape needs an exported memory.
        let no_memory =
            r#"(module (func (export "f") (param i32 i32) (result i64) (i64.const 0)))"#;
        assert!(matches!(
            classify(no_memory, "f"),
            Err(RuntimeError::MissingMemory { .. })
        ));
        let reference = r#"(module (func (export "f") (param externref)))"#;
        let error = classify(reference, "f").expect_err("no ABI takes a reference");
        assert!(
            matches!(&error, RuntimeError::UnsupportedSignature { signature, .. } if signature == "(externref) -> ()"),
            "{error}"
        );
    }
}
