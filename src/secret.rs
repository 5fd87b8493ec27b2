//! Secrets as every layer sees them: a validated [`SecretName`], a
//! [`SecretValue`] whose `Debug` never shows it, and a [`Secret`] (both, as
//! one call of a function is handed them).
//!
//! A secret's name becomes a file name in the data directory
//! (`secrets/<name>`), a file name in a WASI function's
//! `/var/openfaas/secrets/` and an environment variable's name
//! (`SECRET_<NAME>`, see [`SecretName::env_var_name`]), so its constructor
//! lets through nothing that could name another path. Storing secrets is
//! `store::SecretStore`'s; this module does no I/O.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// Longest accepted secret name, in characters.
pub const MAX_SECRET_NAME_LEN: usize = 64;
/// Largest secret value, in bytes (64 KiB): a key, a token, a certificate
/// chain. Each call of a function that uses it copies it into the instance.
pub const MAX_SECRET_VALUE_BYTES: usize = 64 << 10;
/// What every secret's environment variable begins with
/// ([`SecretName::env_var_name`]); a deploy's `env` may not use it.
pub const SECRET_ENV_PREFIX: &str = "SECRET_";
/// Most secrets one function may be deployed with.
pub const MAX_SECRETS_PER_FUNCTION: usize = 64;
/// Where a WASI function finds its secrets, one read-only file each
/// (OpenFaaS's path).
pub const SECRETS_MOUNT_PATH: &str = "/var/openfaas/secrets";

const NAME_RULE: &str =
    "a secret name is 1-64 characters of [A-Za-z0-9_.-], not starting with '.' or '-'";

/// A secret's name: 1-64 characters of `[A-Za-z0-9_.-]`, not starting with
/// `.` or `-` (so never `..`, never a `/`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    /// Validates `name`.
    ///
    /// # Errors
    /// A message saying which rule `name` breaks (it quotes the name: a
    /// name is not secret).
    pub fn new(name: &str) -> Result<Self, String> {
        let Some(first) = name.chars().next() else {
            return Err(format!("secret name is empty; {NAME_RULE}"));
        };
        let length = name.chars().count();
        if length > MAX_SECRET_NAME_LEN {
            return Err(format!(
                "secret name is {length} characters long; {NAME_RULE}"
            ));
        }
        if let Some(character) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!(
                "secret name {name:?} contains {character:?}; {NAME_RULE}"
            ));
        }
        if first == '.' || first == '-' {
            return Err(format!(
                "secret name {name:?} starts with {first:?}; {NAME_RULE}"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as a string slice (also its file name).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The environment variable a function sees it as: `SECRET_` and the
    /// name upper-cased, with `-` and `.` turned into `_` (`api-key` and
    /// `api.key` both become `SECRET_API_KEY`; a deploy naming both is
    /// refused, see [`check_secret_list`]).
    pub fn env_var_name(&self) -> String {
        let mangled: String = self
            .0
            .chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        format!("SECRET_{mangled}")
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SecretName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The names of a deploy's `secrets` list, validated.
///
/// # Errors
/// The first invalid name's message.
pub fn secret_names(names: &[String]) -> Result<Vec<SecretName>, String> {
    names.iter().map(|name| SecretName::new(name)).collect()
}

/// Checks the `secrets` a deploy names: at most
/// [`MAX_SECRETS_PER_FUNCTION`], no name twice, no two names with the same
/// environment variable.
///
/// # Errors
/// A message naming the offending names.
pub fn check_secret_list(secrets: &[SecretName]) -> Result<(), String> {
    if secrets.len() > MAX_SECRETS_PER_FUNCTION {
        return Err(format!(
            "secrets names {} secrets; a function may use at most {MAX_SECRETS_PER_FUNCTION}",
            secrets.len()
        ));
    }
    for (index, name) in secrets.iter().enumerate() {
        for earlier in &secrets[..index] {
            if earlier == name {
                return Err(format!("secrets names {name} twice"));
            }
            if earlier.env_var_name() == name.env_var_name() {
                return Err(format!(
                    "secrets {earlier} and {name} would both be the environment variable {}; rename one",
                    name.env_var_name()
                ));
            }
        }
    }
    Ok(())
}

/// A secret's value: up to [`MAX_SECRET_VALUE_BYTES`] bytes. Its `Debug`
/// shows only its length, so it cannot leak through a log line or an error.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Checks the size of `bytes`.
    ///
    /// # Errors
    /// A message giving the size and the limit (never the bytes).
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() > MAX_SECRET_VALUE_BYTES {
            return Err(format!(
                "the secret's value is {} bytes; at most {MAX_SECRET_VALUE_BYTES} are accepted",
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// The value's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as an environment variable's value: `None` when it is not
    /// UTF-8 or holds a NUL, which an environment cannot carry (the
    /// function then has only the file).
    pub fn env_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0)
            .ok()
            .filter(|text| !text.contains('\0'))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({} bytes, hidden)", self.0.len())
    }
}

/// One secret as a call hands it to a function.
#[derive(Clone, Debug)]
pub struct Secret {
    pub name: SecretName,
    pub value: Arc<SecretValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<SecretName> {
        list.iter()
            .map(|name| SecretName::new(name).unwrap())
            .collect()
    }

    #[test]
    fn names_that_could_name_another_path_are_refused() {
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "/etc",
            ".hidden",
            "-x",
            "a\0b",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            let error = SecretName::new(bad).unwrap_err();
            assert!(error.contains("secret name"), "{bad:?}: {error}");
        }
        for good in ["api-key", "db.password", "TOKEN_1", &"x".repeat(64)] {
            assert_eq!(SecretName::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn environment_names_are_upper_case_with_underscores() {
        let name = |text| SecretName::new(text).unwrap().env_var_name();
        assert_eq!(name("api-key"), "SECRET_API_KEY");
        assert_eq!(name("db.password"), "SECRET_DB_PASSWORD");
        assert_eq!(name("Token_1"), "SECRET_TOKEN_1");
    }

    #[test]
    fn a_secret_list_with_duplicates_or_clashing_variables_is_refused() {
        assert!(check_secret_list(&names(&["a", "b-c"])).is_ok());
        let twice = check_secret_list(&names(&["a", "a"])).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        let clash = check_secret_list(&names(&["api-key", "api.key"])).unwrap_err();
        assert!(clash.contains("SECRET_API_KEY"), "{clash}");
        let many: Vec<String> = (0..65).map(|index| format!("s{index}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check_secret_list(&names(&many)).is_err());
    }

    #[test]
    fn a_value_never_shows_in_debug_and_is_bounded() {
        let value = SecretValue::new(b"hunter2".to_vec()).unwrap();
        assert_eq!(format!("{value:?}"), "SecretValue(7 bytes, hidden)");
        assert_eq!(value.env_text(), Some("hunter2"));
        assert_eq!(SecretValue::new(vec![0xff]).unwrap().env_text(), None);
        assert_eq!(SecretValue::new(b"a\0b".to_vec()).unwrap().env_text(), None);
        let error = SecretValue::new(vec![b'x'; MAX_SECRET_VALUE_BYTES + 1]).unwrap_err();
        assert!(!error.contains("xxx"), "{error}");
    }
}
