//! `fake-youtube`: run the fake YouTube Data API as a process (for the SAM /
//! cargo-lambda flows and manual poking). Hand-parsed flags keep the fake's
//! dependency set to what the workspace already builds.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use fake_youtube::{FakeConfig, FakeYoutube};

const USAGE: &str = "\
usage: fake-youtube --listen ADDR:PORT [options]

  --listen ADDR:PORT            where to listen (port 0 = any free port)
  --seed N                      corpus seed (default 42)
  --api-key KEY                 the accepted API key (default fake-youtube-key)
  --daily-units N               daily units bucket (default 10000)
  --daily-searches N            daily search.list bucket (default 100)
  --max-calls-per-second N      short-window limit (default off)
  --max-units-per-minute N      short-window limit (default off)
  --clock RFC3339               start the fake clock at this instant (default: real time)
  --channels N                  corpus size in channels (default 3000)
  --world N                     serve a procedural world of N channels instead
                                (300000 or more for a realistic one); uploads
                                appear by each channel's cadence as the clock moves
  --help                        this text
";

fn parse(args: &[String]) -> Result<Option<(SocketAddr, FakeConfig)>, String> {
    let mut config = FakeConfig::default();
    let mut listen: Option<SocketAddr> = None;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        const FLAGS: &[&str] = &[
            "--listen",
            "--seed",
            "--api-key",
            "--daily-units",
            "--daily-searches",
            "--max-calls-per-second",
            "--max-units-per-minute",
            "--clock",
            "--channels",
            "--world",
        ];
        if !FLAGS.contains(&name) {
            return Err(format!("unknown flag {name}"));
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))?
            }
        };
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: '{v}' is not a non-negative integer"))
        };
        match name {
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--listen: '{value}' is not ADDR:PORT"))?,
                )
            }
            "--seed" => config.seed = num(&value)?,
            "--api-key" => config.api_key = value,
            "--daily-units" => config.daily_units = num(&value)?,
            "--daily-searches" => config.daily_searches = num(&value)?,
            "--max-calls-per-second" => config.max_calls_per_second = Some(num(&value)?),
            "--max-units-per-minute" => config.max_units_per_minute = Some(num(&value)?),
            "--clock" => {
                config.start_clock = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--clock: '{value}' is not an RFC 3339 timestamp"))?,
                )
            }
            "--channels" => config.channels = num(&value)? as usize,
            "--world" => {
                let n = num(&value)?;
                let max = u64::from(fake_youtube::world::MAX_CHANNELS);
                if !(1..=max).contains(&n) {
                    return Err(format!("--world: {n} channels is not in 1..={max}"));
                }
                config.world_channels = Some(n as u32);
            }
            other => return Err(format!("unknown flag {other}")),
        }
        i += 1;
    }
    let listen = listen.ok_or("--listen is required")?;
    Ok(Some((listen, config)))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, config) = match parse(&args) {
        Ok(Some(x)) => x,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-youtube: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeYoutube::start(listen, config).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-youtube: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "fake-youtube listening on http://{}", fake.addr());
    let _ = out.flush();
    let _ = tokio::signal::ctrl_c().await;
    fake.shutdown();
    ExitCode::SUCCESS
}
