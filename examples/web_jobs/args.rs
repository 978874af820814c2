//! The command line: `--bind ADDR`, else `WEB_JOBS_BIND`, else the default.

/// Where the service listens unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The environment variable that names the address, when `--bind` does not.
pub const BIND_ENV: &str = "WEB_JOBS_BIND";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Serve on this address.
    Serve(String),
    /// Print the usage.
    Help,
}

pub const USAGE: &str = "usage: web_jobs [--bind ADDR]

  --bind ADDR   the address to listen on (default: $WEB_JOBS_BIND, else 127.0.0.1:8080);
                port 0 takes any free port. The address is printed on stdout:
                listening on http://ADDR";

/// Reads the arguments (without the program's name) and the value of
/// [`BIND_ENV`]: `--bind` wins over the environment, which wins over
/// [`DEFAULT_BIND`].
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
    env: Option<String>,
) -> Result<Command, String> {
    let mut bind = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--bind" => match args.next() {
                Some(addr) if !addr.is_empty() => bind = Some(addr),
                _ => return Err("--bind needs an address, such as 127.0.0.1:8080".to_owned()),
            },
            _ => match arg.strip_prefix("--bind=") {
                Some(addr) if !addr.is_empty() => bind = Some(addr.to_owned()),
                Some(_) => {
                    return Err("--bind needs an address, such as 127.0.0.1:8080".to_owned());
                }
                None => return Err(format!("unknown argument {arg:?}")),
            },
        }
    }
    let env = env.filter(|addr| !addr.is_empty());
    Ok(Command::Serve(
        bind.or(env).unwrap_or_else(|| DEFAULT_BIND.to_owned()),
    ))
}
