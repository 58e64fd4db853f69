//! A model prompt as a gateway builds it for a Duo feature (instructions, chat history,
//! the user's text, code context around the cursor) and the request bodies that carry
//! it in each provider's format: OpenAI chat completions, legacy completions with the
//! family's fill-in-the-middle tokens, Bedrock Converse and Mistral `invoke`.
//! Output length is asked with `max_tokens` everywhere, and forced where the server
//! supports it (vLLM's `min_tokens` and `ignore_eos`).

use serde_json::{Value, json};

/// Who said a turn of the chat history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The user.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The OpenAI and Converse role name.
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One prompt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prompt {
    /// Instructions the gateway's template puts first (a system message).
    pub system: Option<String>,
    /// Earlier turns of a chat, oldest first.
    pub history: Vec<(Role, String)>,
    /// The user's text: the question, the instruction, the prompt feature's input.
    pub user: String,
    /// Code before the cursor.
    pub above: String,
    /// Code after the cursor.
    pub below: String,
}

/// How long the answer may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation {
    /// `max_tokens`.
    pub max_tokens: u64,
    /// Ask for exactly `max_tokens` where the server can be told (vLLM: `min_tokens`
    /// equal to it and `ignore_eos`).
    pub force: bool,
}

/// Where the cursor stands in the code a chat model is shown.
pub const CURSOR: &str = "<cursor>";

impl Prompt {
    /// The user turn as a chat model gets it: the user's text, then the code around
    /// the cursor in a fenced block.
    pub fn user_turn(&self) -> String {
        if self.above.is_empty() && self.below.is_empty() {
            return self.user.clone();
        }
        let mut s = String::with_capacity(self.user.len() + self.above.len() + self.below.len() + 32);
        s.push_str(&self.user);
        s.push_str("\n```\n");
        s.push_str(&self.above);
        if !self.below.is_empty() {
            s.push_str(CURSOR);
            s.push_str(&self.below);
        }
        s.push_str("\n```");
        s
    }

    /// OpenAI chat `messages`.
    pub fn messages(&self) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.history.len() + 2);
        if let Some(s) = &self.system {
            out.push(json!({"role": "system", "content": s}));
        }
        for (role, text) in &self.history {
            out.push(json!({"role": role.name(), "content": text}));
        }
        out.push(json!({"role": "user", "content": self.user_turn()}));
        out
    }
}

fn generation(body: &mut Value, g: Generation, stream: bool) {
    body["max_tokens"] = json!(g.max_tokens);
    if g.force {
        body["min_tokens"] = json!(g.max_tokens);
        body["ignore_eos"] = json!(true);
    }
    body["stream"] = json!(stream);
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
}

/// `POST /chat/completions` (vLLM, Azure, OpenAI-compatible proxies).
pub fn openai_chat(model: &str, p: &Prompt, g: Generation, stream: bool) -> Value {
    let mut body = json!({"model": model, "messages": p.messages(), "temperature": 0});
    generation(&mut body, g, stream);
    body
}

/// `POST /completions` with the prompt a code completion sends: the family's
/// fill-in-the-middle form of the code around the cursor (after the user's text and
/// instructions, when there are any).
pub fn openai_completion(model: &str, family: &str, p: &Prompt, g: Generation, stream: bool) -> Value {
    let mut prompt = String::new();
    if let Some(s) = &p.system {
        prompt.push_str(s);
        prompt.push('\n');
    }
    if !p.user.is_empty() {
        prompt.push_str(&p.user);
        prompt.push('\n');
    }
    prompt.push_str(&fim(family, &p.above, &p.below));
    let mut body = json!({"model": model, "prompt": prompt, "temperature": 0});
    generation(&mut body, g, stream);
    body
}

/// The fill-in-the-middle prompt of a model family (its published FIM tokens): the
/// Mistral family's `[SUFFIX]...[PREFIX]...` (as the AI gateway sends it), CodeGemma's
/// and Qwen's `<|fim_prefix|>`, CodeLlama's `<PRE>`, DeepSeek Coder's `<｜fim▁begin｜>`;
/// other families get the code before the cursor alone.
pub fn fim(family: &str, above: &str, below: &str) -> String {
    match family {
        "mistral" | "mixtral" | "codestral" => format!("<s>[SUFFIX]{below}[PREFIX]{above}"),
        "codegemma" | "qwen" => format!("<|fim_prefix|>{above}<|fim_suffix|>{below}<|fim_middle|>"),
        "codellama" => format!("<PRE> {above} <SUF>{below} <MID>"),
        "deepseekcoder" => format!("<｜fim▁begin｜>{above}<｜fim▁hole｜>{below}<｜fim▁end｜>"),
        _ => above.to_owned(),
    }
}

/// A Bedrock Converse body (`converse`, `converse-stream`).
pub fn converse(p: &Prompt, g: Generation) -> Value {
    let mut messages: Vec<Value> = p
        .history
        .iter()
        .map(|(role, text)| json!({"role": role.name(), "content": [{"text": text}]}))
        .collect();
    messages.push(json!({"role": "user", "content": [{"text": p.user_turn()}]}));
    let mut body = json!({"messages": messages,
                          "inferenceConfig": {"maxTokens": g.max_tokens, "temperature": 0}});
    if let Some(s) = &p.system {
        body["system"] = json!([{"text": s}]);
    }
    body
}

/// A Bedrock `invoke` body for a Mistral model: Mistral's instruction format.
pub fn mistral_invoke(p: &Prompt, g: Generation) -> Value {
    let mut prompt = String::from("<s>");
    let mut first = true;
    let inst = |prompt: &mut String, text: &str, first: &mut bool| {
        prompt.push_str("[INST] ");
        if *first && let Some(s) = &p.system {
            prompt.push_str(s);
            prompt.push_str("\n\n");
        }
        *first = false;
        prompt.push_str(text);
        prompt.push_str(" [/INST]");
    };
    for (role, text) in &p.history {
        match role {
            Role::User => inst(&mut prompt, text, &mut first),
            Role::Assistant => {
                prompt.push_str(text);
                prompt.push_str("</s>");
            }
        }
    }
    inst(&mut prompt, &p.user_turn(), &mut first);
    json!({"prompt": prompt, "max_tokens": g.max_tokens, "temperature": 0})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> Prompt {
        Prompt {
            system: Some("Be brief.".into()),
            history: vec![(Role::User, "hi".into()), (Role::Assistant, "hello".into())],
            user: "Complete it.".into(),
            above: "def f(".into(),
            below: ")".into(),
        }
    }

    #[test]
    fn chat_bodies_carry_every_part_and_force_the_length_only_when_asked() {
        let g = Generation {
            max_tokens: 200,
            force: true,
        };
        let b = openai_chat("m", &prompt(), g, true);
        let roles: Vec<&str> = b["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(b["messages"][3]["content"], "Complete it.\n```\ndef f(<cursor>)\n```");
        assert_eq!((&b["min_tokens"], &b["ignore_eos"]), (&json!(200), &json!(true)));
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = openai_chat("m", &prompt(), Generation { force: false, ..g }, false);
        assert!(b.get("min_tokens").is_none() && b.get("stream_options").is_none());
    }

    #[test]
    fn completions_use_the_family_fim_tokens() {
        let p = Prompt {
            above: "a".into(),
            below: "b".into(),
            ..Prompt::default()
        };
        let g = Generation {
            max_tokens: 64,
            force: false,
        };
        assert_eq!(
            openai_completion("m", "codestral", &p, g, false)["prompt"],
            "<s>[SUFFIX]b[PREFIX]a"
        );
        assert_eq!(
            fim("codegemma", "a", "b"),
            "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"
        );
        assert_eq!(fim("gpt", "a", "b"), "a");
    }

    #[test]
    fn bedrock_bodies_keep_the_turns() {
        let g = Generation {
            max_tokens: 10,
            force: true,
        };
        let c = converse(&prompt(), g);
        assert_eq!(c["system"][0]["text"], "Be brief.");
        assert_eq!(c["messages"].as_array().unwrap().len(), 3);
        assert_eq!(c["inferenceConfig"]["maxTokens"], 10);
        let m = mistral_invoke(&prompt(), g);
        assert_eq!(
            m["prompt"],
            "<s>[INST] Be brief.\n\nhi [/INST]hello</s>[INST] Complete it.\n```\ndef f(<cursor>)\n``` [/INST]"
        );
    }
}
