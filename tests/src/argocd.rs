//! Runs the Argo CD health check for LoadTest (`examples/gitops/argocd/loadtest-health.lua`)
//! the way Argo CD runs a custom health check, with Debian's `lua5.4` interpreter.
//!
//! Argo CD (gopher-lua) runs the script as a chunk with the resource in the global `obj`
//! and reads the table it returns (`hs.status`, `hs.message`). The driver here reproduces what
//! matters of that environment:
//! - `obj` is the object as Argo CD decodes it: every number a float (gopher-lua's `LNumber`
//!   is a float64, so `12` and `12.0` are the same value), JSON nulls absent (also from
//!   arrays, which gopher-lua's `Append` skips);
//! - only the libraries Argo CD opens for a custom check from argocd-cm: the base functions,
//!   `table` and a safe `os` — no `string`, `math`, `io`, `utf8` or `debug`, and string values
//!   have no methods (`s:sub(1)` fails there, so it fails here);
//! - the returned value must be a table whose `status` is one of Argo CD's health codes and
//!   whose `message` is a string (or nil), else Argo CD reports an error or `Unknown`.
//!
//! The object is handed to Lua as a table literal generated here from the JSON (strings with
//! every byte outside printable ASCII written as a `\ddd` escape), so no JSON parser is needed
//! in Lua.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The health check, relative to the repository root.
pub const HEALTH_SCRIPT: &str = "examples/gitops/argocd/loadtest-health.lua";

/// The argocd-cm snippet that installs the health check (relative to the repository root).
pub const ARGOCD_CM_PATCH: &str = "examples/gitops/argocd/argocd-cm-patch.yaml";

/// The argocd-cm key Argo CD reads a LoadTest's health check from.
pub const ARGOCD_CM_KEY: &str = "resource.customizations.health.stampede.dev_LoadTest";

/// The health codes Argo CD accepts from a Lua check.
pub const HEALTH_CODES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];

/// How long the script may run (Argo CD gives it one second; this leaves room for a busy CI
/// machine while still catching a script that never ends).
const TIMEOUT: Duration = Duration::from_secs(20);

/// The health check's path in this checkout.
pub fn health_script() -> PathBuf {
    crate::repo_root().join(HEALTH_SCRIPT)
}

/// Argo CD's verdict on a LoadTest: `(hs.status, hs.message)` from the repository's health
/// check. `object` is the whole LoadTest as JSON (e.g. `serde_json::to_value(&test)` of kube's
/// object, or `kubectl get lt NAME -o json`).
///
/// Panics when `lua5.4` is missing, when the script fails, or when it returns something Argo
/// CD would not accept.
pub fn argocd_health(object: &Value) -> (String, String) {
    argocd_health_with(&health_script(), object)
}

/// [`argocd_health`] with another copy of the script (e.g. the one inlined in argocd-cm).
pub fn argocd_health_with(script: &Path, object: &Value) -> (String, String) {
    let dir = tempfile::tempdir().expect("temporary directory for the Lua driver");
    let driver = dir.path().join("driver.lua");
    std::fs::write(&driver, driver_source(object)).expect("write the Lua driver");
    let mut child = match Command::new("lua5.4")
        .arg(&driver)
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            panic!("install lua5.4 (apt-get install lua5.4): the Argo CD health check tests run it")
        }
        Err(error) => panic!("cannot run lua5.4: {error}"),
    };
    let started = Instant::now();
    loop {
        match child.try_wait().expect("wait for lua5.4") {
            Some(_) => break,
            None if started.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{}: still running after {TIMEOUT:?} (Argo CD stops a health check after 1s)",
                    script.display()
                );
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let output = child.wait_with_output().expect("read lua5.4 output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{} failed on\n{}\n{stderr}{stdout}",
        script.display(),
        serde_json::to_string_pretty(object).unwrap_or_default()
    );
    let (status, message) = stdout.split_once('\n').unwrap_or((stdout.as_str(), ""));
    (status.to_string(), message.to_string())
}

/// The Lua driver: `obj` as a table literal, the sandbox, the run and the checks on `hs`.
/// `arg[1]` is the health script's path.
fn driver_source(object: &Value) -> String {
    let mut literal = String::new();
    lua_literal(object, &mut literal);
    let codes = HEALTH_CODES
        .iter()
        .map(|code| format!("[\"{code}\"] = true"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"local script_path = arg[1]
local object = {literal}

-- What Argo CD opens for a custom health check: base, table, package and a safe os.
local env = {{}}
for _, name in ipairs({{"assert", "error", "getmetatable", "ipairs", "load", "next", "pairs",
    "pcall", "print", "rawequal", "rawget", "rawlen", "rawset", "require", "select",
    "setmetatable", "tonumber", "tostring", "type", "xpcall", "_VERSION"}}) do
  env[name] = _G[name]
end
env.table = table
env.os = {{clock = os.clock, date = os.date, difftime = os.difftime, time = os.time}}
env._G = env
env.obj = object

local file = assert(io.open(script_path, "rb"))
local source = file:read("a")
file:close()
local chunk, load_error = load(source, "@" .. script_path, "t", env)
if not chunk then
  io.stderr:write("the health script does not compile: ", load_error, "\n")
  os.exit(3)
end

-- Without the string library, string values have no methods.
local string_meta = getmetatable("")
local string_index = string_meta.__index
string_meta.__index = nil
local ok, hs = pcall(chunk)
string_meta.__index = string_index
if not ok then
  io.stderr:write("the health script failed: ", tostring(hs), "\n")
  os.exit(3)
end
if type(hs) ~= "table" then
  io.stderr:write("the health script returned a ", type(hs), ", not a table\n")
  os.exit(3)
end
local codes = {{{codes}}}
if type(hs.status) ~= "string" or not codes[hs.status] then
  io.stderr:write("hs.status is ", tostring(hs.status), ": not a health code Argo CD accepts\n")
  os.exit(3)
end
if hs.message ~= nil and type(hs.message) ~= "string" then
  io.stderr:write("hs.message is a ", type(hs.message), ", not a string\n")
  os.exit(3)
end
io.write(hs.status, "\n", hs.message or "")
"#
    )
}

/// Appends `value` as a Lua expression, decoded the way Argo CD decodes an object for Lua:
/// numbers as floats, nulls left out.
pub fn lua_literal(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            if float.is_finite() {
                // Debug keeps a fraction or an exponent ("12.0", "1e21"): Lua reads a float.
                out.push_str(&format!("{float:?}"));
            } else {
                out.push_str("(0/0)");
            }
        }
        Value::String(text) => lua_string(text, out),
        Value::Array(items) => {
            out.push('{');
            for item in items.iter().filter(|item| !item.is_null()) {
                lua_literal(item, out);
                out.push_str(", ");
            }
            out.push('}');
        }
        Value::Object(fields) => {
            out.push('{');
            for (key, item) in fields.iter().filter(|(_, item)| !item.is_null()) {
                out.push('[');
                lua_string(key, out);
                out.push_str("] = ");
                lua_literal(item, out);
                out.push_str(", ");
            }
            out.push('}');
        }
    }
}

/// A Lua string literal holding exactly the bytes of `text`.
fn lua_string(text: &str, out: &mut String) {
    out.push('"');
    for byte in text.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            // Three digits always, so a following digit is not read as part of the escape.
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_every_byte_that_needs_it() {
        let mut out = String::new();
        lua_literal(
            &serde_json::json!({"a\"b": ["x\\y\n1", 12, 0.5, null, true], "n": null}),
            &mut out,
        );
        assert_eq!(out, r#"{["a\"b"] = {"x\\y\0101", 12.0, 0.5, true, }, }"#);
    }
}
