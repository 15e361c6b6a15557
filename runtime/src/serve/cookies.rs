//! Cookies between clients and guests: the host's own cookies never reach a guest, and a
//! guest's `Set-Cookie` headers are capped (HOSTILE row 42).

/// Whether the cookie of a `name=value` pair is one of `hidden` (names compared ignoring
/// ASCII case).
pub(super) fn is_hidden(pair: &str, hidden: &[String]) -> bool {
    let name = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
    hidden.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Removes the cookies named in `hidden` from `Cookie` headers (dropping a header left empty).
pub(super) fn hide_cookies(headers: &mut hyper::HeaderMap, hidden: &[String]) {
    if hidden.is_empty() || !headers.contains_key(hyper::header::COOKIE) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            let pairs: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|kv| !kv.is_empty() && !is_hidden(kv, hidden))
                .collect();
            (!pairs.is_empty()).then(|| pairs.join("; "))
        })
        .collect();
    headers.remove(hyper::header::COOKIE);
    for k in kept {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&k) {
            headers.append(hyper::header::COOKIE, v);
        }
    }
}

/// The largest `Set-Cookie` a guest's answer passes on (what browsers keep of one cookie), and
/// the most of them together in one answer.
const MAX_SET_COOKIE: usize = 4096;

const MAX_SET_COOKIES: usize = 16 * 1024;

/// Removes a guest's `Set-Cookie` for the cookies named in `hidden` (a guest cannot log the
/// host's dashboard out, or plant a session, through the browser they share), and those past
/// [`MAX_SET_COOKIE`] or [`MAX_SET_COOKIES`]: an answer cannot load the browser with cookies
/// that every other server of the host is then sent.
pub(super) fn filter_set_cookies(headers: &mut hyper::HeaderMap, hidden: &[String]) {
    if !headers.contains_key(hyper::header::SET_COOKIE) {
        return;
    }
    let mut total = 0;
    let kept: Vec<hyper::header::HeaderValue> = headers
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let text = String::from_utf8_lossy(v.as_bytes());
            if v.len() > MAX_SET_COOKIE
                || total + v.len() > MAX_SET_COOKIES
                || is_hidden(text.split(';').next().unwrap_or_default(), hidden)
            {
                return false;
            }
            total += v.len();
            true
        })
        .cloned()
        .collect();
    headers.remove(hyper::header::SET_COOKIE);
    for v in kept {
        headers.append(hyper::header::SET_COOKIE, v);
    }
}
