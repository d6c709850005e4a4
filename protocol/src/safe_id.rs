//! Model id → reference file name (validator.md "Reference lookup").
//!
//! Lower-case; `/`, `\`, `:` and space each become `-`; runs of `-` collapse to one.
//! `Qwen/Qwen3-235B-A22B-Instruct-2507-FP8` → `qwen-qwen3-235b-a22b-instruct-2507-fp8`.
//! Going beyond the script: an id that would come out empty or as dots only (`.`, `..`)
//! has its dots replaced by `_`, so the name can never walk out of the artifacts dir.

/// The safe id (without `.json`).
pub fn safe_id(model: &str) -> String {
    let mut out = String::with_capacity(model.len());
    for ch in model.chars().flat_map(char::to_lowercase) {
        let ch = match ch {
            '/' | '\\' | ':' | ' ' => '-',
            c => c,
        };
        if ch == '-' && out.ends_with('-') {
            continue;
        }
        out.push(ch);
    }
    if out.chars().all(|c| c == '.') {
        out = out.replace('.', "_");
        if out.is_empty() {
            out.push('_');
        }
    }
    out
}

/// `<safe id>.json`.
pub fn reference_file_name(model: &str) -> String {
    format!("{}.json", safe_id(model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_ids() {
        assert_eq!(
            safe_id("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8"),
            "qwen-qwen3-235b-a22b-instruct-2507-fp8"
        );
        assert_eq!(safe_id("MiniMaxAI/MiniMax-M2.7"), "minimaxai-minimax-m2.7");
        assert_eq!(safe_id("Qwen/Qwen3-32B-FP8"), "qwen-qwen3-32b-fp8");
        assert_eq!(safe_id("a//b"), "a-b");
        assert_eq!(safe_id("a - b"), "a-b");
        assert_eq!(safe_id("org\\x:y"), "org-x-y");
        assert_eq!(safe_id(".."), "__");
        assert_eq!(safe_id(""), "_");
        assert_eq!(
            reference_file_name("zai-org/GLM-5.3-Flash"),
            "zai-org-glm-5.3-flash.json"
        );
    }

    proptest! {
        #[test]
        fn never_unsafe(s in "\\PC{0,40}|[./\\\\: -]{0,8}") {
            let id = safe_id(&s);
            prop_assert!(!id.contains('/'));
            prop_assert!(!id.contains('\\'));
            prop_assert!(!id.contains(':'));
            prop_assert!(!id.contains(' '));
            prop_assert!(!id.contains("--"));
            prop_assert!(!id.is_empty());
            prop_assert!(!id.chars().all(|c| c == '.'));
        }
    }
}
