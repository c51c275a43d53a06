//! Human durations: a whole number followed by one unit.
//!
//! Units: `s` seconds, `m` minutes, `h` hours, `d` days, `w` weeks, `y` years
//! (365 days). Examples: `60s`, `90m`, `24h`, `30d`, `2w`, `1y`.

use std::time::Duration;

use crate::error::Error;

fn invalid(input: &str, reason: &'static str) -> Error {
    Error::Duration {
        input: input.to_string(),
        reason,
    }
}

/// Parses a duration such as `30d`.
pub fn parse_duration(input: &str) -> Result<Duration, Error> {
    let text = input.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| invalid(input, "missing unit (use s, m, h, d, w or y, e.g. 30d)"))?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(invalid(
            input,
            "expected a whole number before the unit, e.g. 30d",
        ));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| invalid(input, "number too large"))?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => {
            return Err(invalid(
                input,
                "unknown unit (use s, m, h, d, w or y, e.g. 30d)",
            ))
        }
    };
    let secs = value
        .checked_mul(unit_secs)
        .filter(|s| *s <= MAX_SECONDS)
        .ok_or_else(|| invalid(input, "too long (at most 1000 years)"))?;
    Ok(Duration::from_secs(secs))
}

/// The longest duration accepted: 1000 years. Longer ones are typos, and
/// certificate dates beyond the year 9999 cannot be encoded.
const MAX_SECONDS: u64 = 1000 * 365 * 86_400;

/// Formats a duration in the largest unit that divides it exactly.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [
        ("y", 365 * 86_400),
        ("w", 7 * 86_400),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
    ] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("60s", 60),
            ("90m", 5_400),
            ("24h", 86_400),
            ("30d", 2_592_000),
            ("2w", 1_209_600),
            ("1y", 31_536_000),
            ("0s", 0),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in [
            "",
            "30",
            "d",
            "30x",
            "-1d",
            "1.5d",
            "30 d",
            "99999999999999999999d",
            "1001y",
        ] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(90 * 86_400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(61)), "61s");
        assert_eq!(format_duration(Duration::from_secs(365 * 86_400)), "1y");
    }
}
