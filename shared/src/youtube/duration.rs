/// Seconds in an ISO 8601 duration as YouTube writes them (`PT1H2M3S`, `P0D`, `P1DT2H`).
/// `None` for anything else, so a strange value never fails a whole response.
pub fn parse_iso8601_duration(text: &str) -> Option<u32> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    fn fields(part: &str, units: &[(char, u64)]) -> Option<u64> {
        let mut total = 0u64;
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
            } else {
                let (_, secs) = units.iter().find(|(u, _)| *u == c)?;
                let n: u64 = number.parse().ok()?;
                total = total.checked_add(n.checked_mul(*secs)?)?;
                number.clear();
            }
        }
        number.is_empty().then_some(total)
    }
    let mut total = fields(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        total = total.checked_add(fields(time, &[('H', 3600), ('M', 60), ('S', 1)])?)?;
    }
    u32::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_iso8601_duration as p;

    #[test]
    fn parses_youtube_durations() {
        assert_eq!(p("PT2M39S"), Some(159));
        assert_eq!(p("PT1H2M3S"), Some(3723));
        assert_eq!(p("PT21M7S"), Some(1267));
        assert_eq!(p("P0D"), Some(0));
        assert_eq!(p("P1DT2H"), Some(93_600));
        assert_eq!(p("PT"), None);
        assert_eq!(p("1H"), None);
        assert_eq!(p("PT5X"), None);
    }
}
