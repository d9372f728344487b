use super::numbers::*;

#[test]
fn humanize_like_prometheus() {
    assert_eq!(humanize(1234567.0), "1.235M");
    assert_eq!(humanize(0.0), "0");
    assert_eq!(humanize(0.00123), "1.23m");
    assert_eq!(humanize(f64::NAN), "NaN");
    assert_eq!(humanize(f64::INFINITY), "+Inf");
    assert_eq!(humanize1024(1048576.0), "1Mi");
    assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
    assert_eq!(humanize_duration(1.5), "1.5s");
    assert_eq!(humanize_duration(0.01), "10ms");
    assert_eq!(humanize_percentage(0.1234), "12.34%");
    assert_eq!(go_time(1234567890000), "2009-02-13 23:31:30 +0000 UTC");
    assert_eq!(go_duration(3_661_000_000_000), "1h1m1s");
    assert_eq!(go_duration(1_500_000_000), "1.5s");
    assert_eq!(go_duration(100_000_000), "100ms");
}
