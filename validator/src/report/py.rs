//! Values printed the way Python prints them, because `validate_report.txt` is read by
//! people and scripts that know validate.py's f-strings: `repr(float)` (`1.0`, `0.001`,
//! `2.0040695306849396e-76`), `repr(str)` (`'TEST_BLOCK'`), `True`/`False`, and lists.

use std::fmt::Write;

/// `repr(x)` for a Python float: the shortest digits that round-trip (as Rust's), in
/// fixed notation for `1e-4 <= |x| < 1e16`, else `d.ddde±XX` with at least two exponent
/// digits; integral values keep `.0`.
pub fn float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "1e16", "5e0".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// `repr(s)` for a Python str: single quotes unless the text holds a `'` and no `"`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `str(b)` for a Python bool.
pub fn bool_str(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `str(list_of_str)`: `['--a', 'b']`.
pub fn str_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| str_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// `str(list_of_int)`: `[0, 1, 2]`.
pub fn int_list(items: &[i64]) -> String {
    let inner: Vec<String> = items.iter().map(i64::to_string).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_python_repr() {
        for (x, py) in [
            (1.0, "1.0"),
            (0.2, "0.2"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.0040695306849396e-76, "2.0040695306849396e-76"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (-0.5, "-0.5"),
            (-2.5e-7, "-2.5e-07"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
            (0.75, "0.75"),
            (100.0, "100.0"),
        ] {
            assert_eq!(float(x), py, "{x:e}");
        }
    }

    #[test]
    fn strings_and_lists_as_python() {
        assert_eq!(str_repr("TEST_BLOCK"), "'TEST_BLOCK'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("x\ny\\"), "'x\\ny\\\\'");
        assert_eq!(str_list(&[]), "[]");
        assert_eq!(
            str_list(&["--tensor-parallel-size".into(), "4".into()]),
            "['--tensor-parallel-size', '4']"
        );
        assert_eq!(int_list(&[0, 1, 17]), "[0, 1, 17]");
        assert_eq!((bool_str(true), bool_str(false)), ("True", "False"));
    }
}
