//! Builds the web console (`web/`) so the binary can embed it, and tells the embedding where it
//! is through `OMNIHUB_WEB_DIST`; embeds the website widget (`widget/dist`, through
//! `OMNIHUB_WIDGET_DIST`).
//!
//! `web/dist` is rebuilt with `npm ci` (only when `node_modules` is missing or older than the
//! lock file) and `npm run build` when it is missing or older than anything it is built from.
//! `OMNIHUB_SKIP_WEB_BUILD=1` skips that (for machines that build the console separately).
//! Without npm, or with nothing built, a small page saying how to build the console is
//! embedded instead, so a Rust-only machine still builds and runs the server.
//!
//! The widget is rebuilt here only from packages already installed (`widget/node_modules`,
//! put there by `npm ci` in `widget/`, which `scripts/test.sh` runs): this script never
//! installs anything for it. Without a build, `/widget.js` is a script that only logs how to
//! build the widget.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// What `web/dist` is built from; a change to any of them rebuilds it.
const INPUTS: [&str; 6] = [
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>omnihub</title></head>
<body>
<h1>omnihub</h1>
<p>The web console was not built into this binary. Install Node.js 20 or newer with npm, then
run <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code> (or just
<code>cargo build</code> again) and restart. The API is served under <code>/api/v1</code>.</p>
<p lang="ru">Веб-консоль не собрана. Установите Node.js 20+ с npm и выполните
<code>npm ci &amp;&amp; npm run build</code> в каталоге <code>web/</code>, затем перезапустите.</p>
</body>
</html>
"#;

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let web = root.join("web");
    let dist = web.join("dist");
    println!("cargo:rerun-if-env-changed=OMNIHUB_SKIP_WEB_BUILD");
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("index.html").display()
    );

    let skip = std::env::var("OMNIHUB_SKIP_WEB_BUILD").is_ok_and(|v| v == "1");
    if !skip && web.join("package.json").exists() && is_stale(&web, &dist) {
        if npm_available(&web) {
            build_console(&web)?;
        } else {
            println!(
                "cargo:warning=npm not found: embedding a placeholder instead of the web console"
            );
        }
    }

    let embedded = if dist.join("index.html").exists() {
        dist
    } else {
        let placeholder = PathBuf::from(std::env::var("OUT_DIR")?).join("web-placeholder");
        fs::create_dir_all(&placeholder)?;
        fs::write(placeholder.join("index.html"), PLACEHOLDER)?;
        placeholder
    };
    println!("cargo:rustc-env=OMNIHUB_WEB_DIST={}", embedded.display());
    embed_widget(&root)
}

/// What `widget/dist` is built from.
const WIDGET_INPUTS: [&str; 4] = ["src", "build.mjs", "package.json", "tsconfig.json"];

const WIDGET_PLACEHOLDER: &str = "console.warn(\"omnihub: the widget was not built into this \
server; run `npm ci && npm run build` in widget/ and rebuild the server.\");\n";

fn embed_widget(root: &Path) -> Result<(), Box<dyn Error>> {
    let widget = root.join("widget");
    let dist = widget.join("dist");
    for input in WIDGET_INPUTS {
        println!("cargo:rerun-if-changed={}", widget.join(input).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("widget.js").display()
    );
    let skip = std::env::var("OMNIHUB_SKIP_WEB_BUILD").is_ok_and(|v| v == "1");
    let built = newest(&dist.join("widget.js"));
    let stale = built.is_none()
        || WIDGET_INPUTS
            .iter()
            .filter_map(|input| newest(&widget.join(input)))
            .any(|changed| Some(changed) > built);
    if !skip && stale && widget.join("node_modules").exists() && npm_available(&widget) {
        run_npm(&widget, &["run", "build"])?;
    }
    let embedded = if dist.join("widget.js").exists() {
        dist
    } else {
        let placeholder = PathBuf::from(std::env::var("OUT_DIR")?).join("widget-placeholder");
        fs::create_dir_all(&placeholder)?;
        fs::write(placeholder.join("widget.js"), WIDGET_PLACEHOLDER)?;
        placeholder
    };
    println!("cargo:rustc-env=OMNIHUB_WIDGET_DIST={}", embedded.display());
    Ok(())
}

/// The newest modification time of a file, or of any file below a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest(&entry.path()))
        .max()
}

fn is_stale(web: &Path, dist: &Path) -> bool {
    let Some(built) = newest(&dist.join("index.html")) else {
        return true;
    };
    INPUTS
        .iter()
        .filter_map(|input| newest(&web.join(input)))
        .any(|changed| changed > built)
}

fn npm_available(web: &Path) -> bool {
    Command::new("npm")
        .arg("--version")
        .current_dir(web)
        .output()
        .is_ok_and(|out| out.status.success())
}

fn run_npm(web: &Path, args: &[&str]) -> Result<(), Box<dyn Error>> {
    // npm's chatter goes to stderr: cargo reads the build script's stdout for instructions.
    let status = Command::new("npm")
        .args(args)
        .current_dir(web)
        .stdout(Stdio::from(std::io::stderr()))
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`npm {}` in {} failed with {status}",
            args.join(" "),
            web.display()
        )
        .into())
    }
}

fn build_console(web: &Path) -> Result<(), Box<dyn Error>> {
    let installed = newest(&web.join("node_modules").join(".package-lock.json"));
    let locked = newest(&web.join("package-lock.json"));
    if installed.is_none() || locked > installed {
        run_npm(web, &["ci", "--no-audit", "--no-fund", "--prefer-offline"])?;
    }
    run_npm(web, &["run", "build"])
}
