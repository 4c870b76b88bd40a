//! The figures BENCHMARKS.md and the README publish come from the JSON they cite.
//!
//! A published figure carries its source right after it, as an HTML comment the
//! rendered page does not show: `**1.12×**<!-- latency.json /figure1/ratio_p50 -->`, or
//! with a scale, `96.4%<!-- day-10000.json /ours/share_full_page_never_served ×100 -->`.
//! Each such number must equal the JSON value (a JSON pointer into `benchmarks/FILE`),
//! scaled, at the precision it is printed with. A rerun that changes a JSON without the
//! prose (or the reverse) fails here.

use std::path::Path;

/// One cited figure: the number as printed, and where it says it comes from.
#[derive(Debug)]
struct Citation {
    printed: String,
    file: String,
    pointer: String,
    scale: f64,
    line: usize,
}

fn citations(text: &str) -> Vec<Citation> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("<!-- ") {
        let Some(len) = rest[start..].find(" -->") else {
            break;
        };
        let inner = &rest[start + 5..start + len];
        let absolute = offset + start;
        let mut words = inner.split_whitespace();
        if let (Some(file), Some(pointer)) = (words.next(), words.next())
            && file.ends_with(".json")
            && pointer.starts_with('/')
        {
            let scale = words
                .next()
                .and_then(|s| s.strip_prefix('×'))
                .map(|s| s.parse().expect("a scale"))
                .unwrap_or(1.0);
            let before = &text[..absolute];
            let trimmed = before.trim_end_matches(|c: char| {
                c.is_whitespace() || matches!(c, '*' | '×' | '%' | ')' | '`') || c.is_alphabetic()
            });
            let number: String = trimmed
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            out.push(Citation {
                printed: number.trim_start_matches([',', '.']).to_owned(),
                file: file.to_owned(),
                pointer: pointer.to_owned(),
                scale,
                line: before.lines().count(),
            });
        }
        offset = absolute + len + 4;
        rest = &text[offset..];
    }
    out
}

fn check(doc: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let cited = citations(&text);
    for c in &cited {
        let path = root.join("benchmarks").join(&c.file);
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{doc}:{}: {}: {e}", c.line, c.file)),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.file));
        let value = json
            .pointer(&c.pointer)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| {
                panic!(
                    "{doc}:{}: {} has no number at {}",
                    c.line, c.file, c.pointer
                )
            })
            * c.scale;
        assert!(
            !c.printed.is_empty(),
            "{doc}:{}: no number before the citation of {} {}",
            c.line,
            c.file,
            c.pointer
        );
        let printed: f64 = c
            .printed
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("{doc}:{}: {:?} is not a number", c.line, c.printed));
        let decimals = c.printed.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
        let unit = 10f64.powi(-decimals);
        assert!(
            (printed - value).abs() <= unit / 2.0 + 1e-9,
            "{doc}:{}: prints {} but {} {} holds {value}",
            c.line,
            c.printed,
            c.file,
            c.pointer
        );
    }
    cited.len()
}

#[test]
fn the_parser_reads_a_citation_and_its_number() {
    let found = citations(
        "p50 **1,234.5 µs**<!-- a.json /x/p50_us --> and 96.4%<!-- b.json /s ×100 -->, <!-- not one -->",
    );
    assert_eq!(found.len(), 2);
    assert_eq!(
        (
            found[0].printed.as_str(),
            found[0].file.as_str(),
            found[0].pointer.as_str()
        ),
        ("1,234.5", "a.json", "/x/p50_us")
    );
    assert_eq!((found[1].printed.as_str(), found[1].scale), ("96.4", 100.0));
}

#[test]
fn every_cited_figure_matches_its_json() {
    let benchmarks = check("BENCHMARKS.md");
    let readme = check("README.md");
    println!("{benchmarks} figures in BENCHMARKS.md and {readme} in README.md match their JSON");
    assert!(
        benchmarks >= 10,
        "BENCHMARKS.md cites only {benchmarks} figures"
    );
    assert!(readme >= 3, "README.md cites only {readme} figures");
}
