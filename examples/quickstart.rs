//! The modelgate quick start: a plain call, a streamed answer, a tool call and usage, on every
//! provider you have a key for, or on the built-in simulator when you have none.
//!
//! ```sh
//! cargo run --example quickstart                         # simulator, no keys needed
//! OPENAI_API_KEY=sk-… cargo run --example quickstart      # the real OpenAI API
//! ```
//!
//! Each of `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY` and `DEEPSEEK_API_KEY` that is
//! set adds that real provider; with none set, all four run against the simulator.

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use modelgate::providers::{Anthropic, DeepSeek, Gemini, OpenAi};
use modelgate::simulator::{Scenario, Simulator, Wire};
use modelgate::{ChatProvider, ChatRequest, Delta, Message, Tool, ToolChoice};
use serde_json::json;

/// One provider to demonstrate, and the model to ask.
struct Demo {
    provider: Arc<dyn ChatProvider>,
    model: &'static str,
}

impl Demo {
    fn new(provider: impl ChatProvider + 'static, model: &'static str) -> Self {
        Demo {
            provider: Arc::new(provider),
            model,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every provider with a key in the environment; none means the simulator plays all four.
    let mut demos = Vec::new();
    if std::env::var_os("OPENAI_API_KEY").is_some() {
        demos.push(Demo::new(OpenAi::from_env()?, "gpt-4o-mini"));
    }
    if std::env::var_os("ANTHROPIC_API_KEY").is_some() {
        demos.push(Demo::new(Anthropic::from_env()?, "claude-3-5-haiku-latest"));
    }
    if std::env::var_os("GEMINI_API_KEY").is_some() {
        demos.push(Demo::new(Gemini::from_env()?, "gemini-2.5-flash"));
    }
    if std::env::var_os("DEEPSEEK_API_KEY").is_some() {
        demos.push(Demo::new(DeepSeek::from_env()?, "deepseek-chat"));
    }
    // Keep the simulator alive for the whole run when it is used.
    let simulator = if demos.is_empty() {
        let sim = Simulator::start().await?;
        println!(
            "No API keys set: using the built-in simulator at http://{}",
            sim.addr()
        );
        let key = "sim-key";
        demos = vec![
            Demo::new(
                OpenAi::builder()
                    .api_key(key)
                    .base_url(sim.base_url(Wire::OpenAi))
                    .build()?,
                "gpt-4o-mini",
            ),
            Demo::new(
                Anthropic::builder()
                    .api_key(key)
                    .base_url(sim.base_url(Wire::Anthropic))
                    .build()?,
                "claude-3-5-haiku-latest",
            ),
            Demo::new(
                Gemini::builder()
                    .api_key(key)
                    .base_url(sim.base_url(Wire::Gemini))
                    .build()?,
                "gemini-2.5-flash",
            ),
            Demo::new(
                DeepSeek::builder()
                    .api_key(key)
                    .base_url(sim.base_url(Wire::DeepSeek))
                    .build()?,
                "deepseek-chat",
            ),
        ];
        Some(sim)
    } else {
        None
    };

    for demo in &demos {
        run(demo, simulator.as_ref()).await?;
    }
    Ok(())
}

async fn run(demo: &Demo, sim: Option<&Simulator>) -> Result<(), Box<dyn std::error::Error>> {
    let provider = demo.provider.as_ref();
    println!("\n=== {} ({}) ===", provider.name(), demo.model);
    // What the simulator answers; real providers answer for themselves.
    let script = |scenario: Scenario| {
        if let Some(sim) = sim {
            sim.enqueue_for_model(demo.model, scenario);
        }
    };

    // 1. A plain call.
    script(
        Scenario::text("modelgate puts every LLM provider behind one Rust API.").with_usage(21, 11),
    );
    let req = ChatRequest::new(demo.model)
        .system("You answer in one short sentence.")
        .user("What is modelgate, in one sentence?")
        .max_tokens(60);
    let answer = provider.chat(&req).await?;
    println!("answer:   {}", answer.text());
    println!(
        "finish:   {:?}, model {}",
        answer.finish_reason, answer.model
    );

    // 2. The same kind of request, streamed and printed as it arrives.
    script(
        Scenario::text("Streaming lets you show tokens while the model is still writing.")
            .with_chunk_delay(std::time::Duration::from_millis(40))
            .with_usage(18, 14),
    );
    let req = ChatRequest::new(demo.model)
        .user("Why stream answers? One sentence.")
        .max_tokens(60);
    let mut stream = provider.chat_stream(&req).await?;
    print!("streamed: ");
    while let Some(delta) = stream.next().await {
        match delta? {
            Delta::Text(t) => {
                print!("{t}");
                std::io::stdout().flush()?;
            }
            Delta::Usage(u) => print!("  [{} in / {} out tokens]", u.input_tokens, u.output_tokens),
            _ => {}
        }
    }
    println!();

    // 3. A tool call, its result, and the final answer.
    let weather = Tool::function(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );
    script(Scenario::tool_call("call_1", "get_weather", r#"{"city":"Paris"}"#).with_usage(60, 17));
    let req = ChatRequest::new(demo.model)
        .user("What's the weather in Paris?")
        .tool(weather)
        .tool_choice(ToolChoice::Required);
    let answer = provider.chat(&req).await?;
    let Some(call) = answer.tool_calls().first().cloned() else {
        println!("the model did not call the tool");
        return Ok(());
    };
    println!("tool call: {}({})", call.name, call.arguments);
    // Send the assistant turn back as it came (reasoning and signatures included: some
    // providers require them in tool loops).
    let turn: Message = answer.message.clone();
    script(Scenario::text("It is 18 °C and sunny in Paris.").with_usage(85, 12));
    let mut follow_up = req;
    follow_up.tool_choice = None;
    let follow_up = follow_up
        .message(turn)
        .tool_result(call.id.clone(), r#"{"temp_c": 18, "sky": "sunny"}"#);
    let answer = provider.chat(&follow_up).await?;
    println!("final:    {}", answer.text());

    // 4. Usage, normalized the same way for every provider.
    if let Some(u) = answer.usage {
        println!(
            "usage:    {} input ({} cached), {} output ({} reasoning)",
            u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens
        );
    }
    Ok(())
}
