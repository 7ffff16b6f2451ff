//! A router built from a gateway config, on the simulator: the example config's routing table
//! serves each kind of prompt where it says.
#![cfg(all(feature = "server", feature = "simulator"))]

use modelgate::config::{BuildOptions, GatewayConfig};
use modelgate::simulator::Simulator;
use modelgate::{ChatProvider, ChatRequest, ContentPart};

async fn example() -> (modelgate::router::Router, Simulator, Vec<String>) {
    let config = GatewayConfig::load("examples/gateway.toml").unwrap();
    let sim = Simulator::start().await.unwrap();
    let mut options = BuildOptions::default();
    options.simulator = Some(sim.clone());
    let built = config.build_router(&options).unwrap();
    (built.router, sim, built.simulated)
}

#[tokio::test]
async fn the_example_configs_table_routes_each_kind_of_prompt() {
    let (router, _sim, simulated) = example().await;
    assert_eq!(simulated, ["openai", "anthropic", "gemini", "deepseek"]);
    let served = |r: modelgate::ChatResponse| {
        let route = r.route.clone().unwrap();
        (
            route.route,
            r.provider,
            r.model,
            format!("{:?}", route.attempts),
        )
    };
    let short = router
        .chat(&ChatRequest::new("auto").user("hi"))
        .await
        .unwrap();
    let (route, provider, model, attempts) = served(short);
    assert_eq!(
        (route.as_str(), provider.as_str(), model.as_str()),
        ("cheap", "deepseek", "deepseek-chat"),
        "{attempts}"
    );
    let image = ChatRequest::new("auto").user_parts([
        ContentPart::text("what is this?"),
        ContentPart::image_base64("image/png", "iVBORw0KGgo="),
    ]);
    let (route, provider, ..) = served(router.chat(&image).await.unwrap());
    assert_eq!((route.as_str(), provider.as_str()), ("vision", "gemini"));
    let accurate = ChatRequest::new("auto")
        .user("hi")
        .metadata("quality", "accuracy");
    let (route, provider, ..) = served(router.chat(&accurate).await.unwrap());
    assert_eq!(
        (route.as_str(), provider.as_str()),
        ("accurate", "anthropic")
    );
    let long = ChatRequest::new("auto").user("word ".repeat(2_000));
    let (route, provider, ..) = served(router.chat(&long).await.unwrap());
    assert_eq!((route.as_str(), provider.as_str()), ("gpt", "openai"));
}

#[tokio::test]
async fn router_from_config_reports_a_bad_file_by_name() {
    let err = modelgate::router::Router::from_config("examples/no-such.toml").unwrap_err();
    assert_eq!(err.kind(), modelgate::ErrorKind::Config);
    assert!(err.to_string().contains("no-such.toml"), "{err}");
}

#[tokio::test]
async fn a_provider_is_known_by_its_config_name_and_priced_by_its_kind() {
    let config = GatewayConfig::from_toml_str(
        r#"
        [providers.eu-openai]
        kind = "openai"
        api_key = { env = "MODELGATE_TEST_UNSET_EU_KEY" }

        [routes.chat]
        targets = [{ provider = "eu-openai", model = "gpt-4o-mini" }]

        [[budgets]]
        name = "eu"
        usd = 1.0
        scope = { target = "eu-openai/gpt-4o-mini" }
        "#,
        "gateway.toml",
    )
    .unwrap();
    let sim = Simulator::start().await.unwrap();
    let mut options = BuildOptions::default();
    options.simulator = Some(sim.clone());
    let built = config.build_router(&options).unwrap();
    assert_eq!(built.simulated, ["eu-openai"]);
    let router = built.router;
    let r = router
        .chat(&ChatRequest::new("chat").user("hi"))
        .await
        .unwrap();
    assert_eq!(r.provider, "eu-openai");
    assert!(r.cost.unwrap() > 0.0, "priced by its kind");
    let mut s = router
        .chat_stream(&ChatRequest::new("chat").user("hi"))
        .await
        .unwrap();
    assert_eq!(s.provider(), "eu-openai");
    while let Some(d) = futures::StreamExt::next(&mut s).await {
        d.unwrap();
    }
    assert_eq!(router.stats().targets[0].provider, "eu-openai");
    let b = router.budget("eu", None).await.unwrap();
    assert!(b.spent_usd > 0.0, "{b:?}");
}
