//! Human durations as the CLI and the bindings take them: `90` (seconds), `90s`, `30m`, `12h`,
//! `7d`, `2w`.

use std::time::Duration;

/// Parses a duration; `None` for anything else (including overflow).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(seconds).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration(" 2d "), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("2y"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }
}
