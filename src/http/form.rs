//! `application/x-www-form-urlencoded` (the WHATWG form encoding OAuth uses: RFC 6749
//! §B, RFC 7662 §2.1, RFC 8693 §2.1): [`encode`] for requests resigner sends (an
//! introspection call) and [`parse`] for requests it receives (the token endpoint), which
//! refuses a repeated parameter (RFC 6749 §3.2) and text that is not UTF-8. `client_basic`
//! builds HTTP Basic credentials from a client id and secret as RFC 6749 §2.3.1 asks (each
//! form-encoded first). Plain functions over bytes; may use only `base64`.

use base64::Engine;

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form body is not UTF-8")]
    NotUtf8,
    #[error("parameter {0:?} is given more than once")]
    Repeated(String),
    #[error("more than {MAX_PARAMETERS} parameters")]
    TooMany,
}

/// The most parameters [`parse`] reads (OAuth requests have a handful; the repeat check is
/// a scan, so this bounds its cost).
pub const MAX_PARAMETERS: usize = 64;

/// `name=value&...`, each part form-encoded.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        encode_into(name, &mut out);
        out.push('=');
        encode_into(value, &mut out);
    }
    out
}

fn encode_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(other >> 4)] as char);
                out.push(HEX[usize::from(other & 15)] as char);
            }
        }
    }
}

/// The parameters in order; an empty pair (`a=1&&b=2`) is skipped, a name without `=` has
/// an empty value, a `%` not followed by two hex digits stays as it is.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in bytes.split(|b| *b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if pairs.len() == MAX_PARAMETERS {
            return Err(FormError::TooMany);
        }
        let name = decode(name)?;
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(FormError::Repeated(name));
        }
        pairs.push((name, decode(value)?));
    }
    Ok(pairs)
}

fn decode(bytes: &[u8]) -> Result<String, FormError> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// `Basic base64(form(client_id) ":" form(secret))` (RFC 6749 §2.3.1).
pub fn client_basic(client_id: &str, secret: &str) -> String {
    let mut credentials = String::new();
    encode_into(client_id, &mut credentials);
    credentials.push(':');
    encode_into(secret, &mut credentials);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// Decodes [`client_basic`] credentials: `(client_id, secret)`, or `None` when the header is
/// not Basic, not base64, or has no `:`.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let at = bytes.iter().position(|b| *b == b':')?;
    Some((decode(&bytes[..at]).ok()?, decode(&bytes[at + 1..]).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_escapes_what_forms_escape() {
        let token = "a+b/c=d~e f&g%";
        let body = encode(&[("token", token), ("token_type_hint", "access_token")]);
        assert_eq!(
            body,
            "token=a%2Bb%2Fc%3Dd%7Ee+f%26g%25&token_type_hint=access_token"
        );
        let parsed = parse(body.as_bytes()).unwrap();
        assert_eq!(parsed[0], ("token".into(), token.into()));
        assert_eq!(parsed[1].1, "access_token");
    }

    #[test]
    fn parsing_refuses_repeats_and_non_utf8_and_keeps_stray_percent_signs() {
        assert_eq!(parse(b"a=1&b=2&a=3"), Err(FormError::Repeated("a".into())));
        assert_eq!(parse(b"a=%ff"), Err(FormError::NotUtf8));
        let many: Vec<String> = (0..65).map(|i| format!("p{i}=1")).collect();
        assert_eq!(parse(many.join("&").as_bytes()), Err(FormError::TooMany));
        assert_eq!(parse(many[..64].join("&").as_bytes()).unwrap().len(), 64);
        let parsed = parse(b"x=a+b&&bad=%zz&end=%4&flag").unwrap();
        assert_eq!(
            parsed,
            [
                ("x".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(parse(b"u=https%3A%2F%2Fa.b").unwrap()[0].1, "https://a.b");
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let header = client_basic("my client", "s3cr:t+");
        assert_eq!(header, "Basic bXkrY2xpZW50OnMzY3IlM0F0JTJC");
        assert_eq!(
            parse_basic(&header),
            Some(("my client".into(), "s3cr:t+".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }
}
