//! The `modelgate` binary: `check` validates and describes a config, `chat` streams one answer
//! on the simulator.
#![cfg(feature = "server")]

use std::process::Command;

fn modelgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    // Keys of the example config are left unset, so `--simulator` takes the providers over.
    for var in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "DEEPSEEK_API_KEY",
    ] {
        c.env_remove(var);
    }
    c
}

#[test]
fn check_describes_the_example_config() {
    let out = modelgate()
        .args(["check", "--config", "examples/gateway.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("routes:") && text.contains("auto: rules"),
        "{text}"
    );
}

#[test]
fn check_names_the_key_path_of_a_mistake() {
    let dir = std::env::temp_dir().join(format!("modelgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[providers.openai]\nkind = \"openai\"\n\n[routes.chat]\ntargets = [{ provider = \"opnai\", model = \"m\" }]\n",
    )
    .unwrap();
    let out = modelgate()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.toml") && err.contains("routes.chat.targets[0].provider"),
        "{err}"
    );
}

#[test]
fn chat_streams_an_answer_with_provider_tokens_and_cost() {
    let out = modelgate()
        .args([
            "chat",
            "--config",
            "examples/gateway.toml",
            "--simulator",
            "-m",
            "auto",
            "hello there",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "You said: hello there"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("using the built-in simulator"), "{err}");
    assert!(
        err.contains("deepseek/deepseek-chat") && err.contains("tokens in") && err.contains('$'),
        "{err}"
    );
}
