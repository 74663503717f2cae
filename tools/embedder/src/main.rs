//! `embedder --model DIR --listen HOST:PORT [--vectors DIR] [--parent-pid PID]`: loads
//! all-MiniLM-L6-v2 from DIR and serves it, with a vector index kept in the --vectors directory
//! (in memory without one); the first line on stdout is `listening on http://HOST:PORT` once it
//! is ready. With --parent-pid it exits when that process is gone, so it never outlives the dev
//! stack that started it.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use embedder::Embedder;
use embedder::server::Server;
use embedder::vectors::Index;

const USAGE: &str = "usage: embedder --model DIR --listen HOST:PORT [--vectors DIR] [--parent-pid PID]";

struct Args {
    model: PathBuf,
    listen: String,
    vectors: Option<PathBuf>,
    parent_pid: Option<u32>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut model, mut listen, mut vectors, mut parent_pid) = (None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(value()?)),
            "--listen" => listen = Some(value()?),
            "--vectors" => vectors = Some(PathBuf::from(value()?)),
            "--parent-pid" => {
                let pid = value()?;
                parent_pid = Some(
                    pid.parse()
                        .map_err(|_| format!("--parent-pid {pid} is not a process id"))?,
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        model: model.ok_or("--model is required")?,
        listen: listen.ok_or("--listen is required")?,
        vectors,
        parent_pid,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("embedder: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(pid) = args.parent_pid {
        if !is_running(pid) {
            eprintln!("embedder: the parent process {pid} is not running");
            return ExitCode::FAILURE;
        }
        std::thread::spawn(move || exit_with_parent(pid));
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("embedder: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let listener =
        TcpListener::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let embedder = Embedder::load(&args.model, threads)
        .map_err(|e| format!("cannot load the model from {}: {e}", args.model.display()))?;
    let vectors = match &args.vectors {
        Some(dir) => {
            Index::open(dir).map_err(|e| format!("cannot open the vectors in {}: {e}", dir.display()))?
        }
        None => Index::in_memory(),
    };
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{address}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    Server::new(embedder, vectors)
        .serve(listener)
        .map_err(|e| format!("the server stopped: {e}"))
}

/// Whether process `pid` is alive: on Linux its /proc entry, a zombie (exited, not yet reaped
/// by its parent) counting as gone; elsewhere `kill -0`.
fn is_running(pid: u32) -> bool {
    if Path::new("/proc/self/stat").exists() {
        // The state follows the command name, which is in parentheses and may hold any byte.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    } else {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

fn exit_with_parent(pid: u32) {
    while is_running(pid) {
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("embedder: the parent process {pid} has exited; stopping");
    std::process::exit(0);
}
