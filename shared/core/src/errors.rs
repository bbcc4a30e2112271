//! What every error of Baton's can be asked: whether trying again may help, and its causes
//! in words.

/// An error and its causes, `outer: inner: innermost`: reqwest's errors, for one, say only
/// "error sending request" without their sources.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Errors that know whether trying again may help.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}
