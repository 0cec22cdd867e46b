//! The bearer token that allows the API's actions. It comes from the
//! environment only, is compared in constant time, and never shows in logs
//! or `Debug` output.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TOKEN_VAR: &str = "CUTOVER_API_TOKEN";
pub const TOKEN_FILE_VAR: &str = "CUTOVER_API_TOKEN_FILE";

/// Kept as a digest: comparing digests takes the same time whatever the
/// length or content of a guess, and the token itself is not kept around.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("set only one of {TOKEN_VAR} and {TOKEN_FILE_VAR}")]
    Both,
    #[error("{0} is set but empty: give it the token (or unset it to disable the API's actions)")]
    Empty(&'static str),
    #[error("{TOKEN_FILE_VAR}: cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl ApiToken {
    pub fn new(token: &str) -> Result<ApiToken, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Empty(TOKEN_VAR));
        }
        Ok(ApiToken {
            digest: digest(token.as_bytes()),
        })
    }

    /// From `CUTOVER_API_TOKEN`, or the file `CUTOVER_API_TOKEN_FILE` names
    /// (surrounding whitespace dropped, so a trailing newline is fine).
    /// `None`: no token, and the API's actions are disabled.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<ApiToken>, TokenError> {
        match (env(TOKEN_VAR), env(TOKEN_FILE_VAR)) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(TokenError::Both),
            (Some(token), None) => ApiToken::new(&token).map(Some),
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(Path::new(&path)).map_err(|e| TokenError::File {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                ApiToken::new(&text)
                    .map(Some)
                    .map_err(|_| TokenError::Empty(TOKEN_FILE_VAR))
            }
        }
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn allows(&self, authorization: &str) -> bool {
        let Some((scheme, given)) = authorization.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        digest(given.trim().as_bytes()).ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let token = ApiToken::new("s3cret-value").unwrap();
        let shown = format!("{token:?} {:?}", Some(&token));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn only_the_exact_bearer_token_is_allowed() {
        let token = ApiToken::new("s3cret").unwrap();
        assert!(token.allows("Bearer s3cret"));
        assert!(token.allows("bearer s3cret"));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
            "",
        ] {
            assert!(!token.allows(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn comes_from_the_variable_or_the_file_but_not_both() {
        assert!(ApiToken::from_env(env(&[])).unwrap().is_none());
        let t = ApiToken::from_env(env(&[(TOKEN_VAR, "abc")]))
            .unwrap()
            .unwrap();
        assert!(t.allows("Bearer abc"));
        assert_eq!(
            ApiToken::from_env(env(&[(TOKEN_VAR, "a"), (TOKEN_FILE_VAR, "/x")])).unwrap_err(),
            TokenError::Both
        );
        assert_eq!(
            ApiToken::from_env(env(&[(TOKEN_VAR, "  ")])).unwrap_err(),
            TokenError::Empty(TOKEN_VAR)
        );

        let dir = std::env::temp_dir().join(format!("cutover-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let path = path.display().to_string();
        let t = ApiToken::from_env(env(&[(TOKEN_FILE_VAR, &path)]))
            .unwrap()
            .unwrap();
        assert!(t.allows("Bearer from-file"));
        let missing = dir.join("missing").display().to_string();
        let e = ApiToken::from_env(env(&[(TOKEN_FILE_VAR, &missing)])).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
