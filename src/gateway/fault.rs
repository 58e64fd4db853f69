//! Named faults of the reference gateway. Each breaks exactly one rule a real
//! gateway must keep, so the test suite can show every conformance check failing
//! against a gateway that really breaks its rule.

/// One deliberate defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Appends `/v1` to the endpoint (so `/v1` endpoints become `/v1/v1`).
    AppendV1,
    /// Keeps a trailing slash (so `…/v1/` becomes `…/v1//chat/completions`).
    KeepTrailingSlash,
    /// Never forwards the model's API key.
    DropApiKey,
    /// Sends the last key it saw to models that have none.
    SendForeignKey,
    /// Sends the model family as the upstream model name.
    WrongModelName,
    /// Forwards the identifier verbatim, prefix included, as the model name.
    IgnoreIdentifierPrefix,
    /// Calls upstream even when the identifier is empty.
    RouteEmptyIdentifier,
    /// Serves requests that carry no client credentials.
    AcceptMissingAuth,
    /// Serves requests whose token is wrong.
    AcceptAnyToken,
    /// Puts the model's API key into error messages.
    LeakApiKeyInError,
    /// Caches one upstream client per family: a second model of a family goes to
    /// the first one's endpoint.
    ReuseFirstEndpoint,
    /// Answers 200 with empty content when the upstream failed.
    SwallowUpstreamError,
    /// `/v1/prompts/*` keeps using the first model it served, whatever the request says.
    PromptsIgnoreModelMetadata,
    /// Breaks the ndjson framing of chat streams.
    BrokenStreamFraming,
    /// Sends the Azure key as `Authorization: Bearer` instead of `api-key`.
    AzureBearerInsteadOfApiKey,
    /// Calls Azure deployments without `api-version`.
    AzureDropApiVersion,
    /// Calls Bedrock without a SigV4 signature.
    UnsignedBedrock,
    /// Signs Bedrock calls for another region than its own.
    BedrockWrongRegion,
    /// OpenAI front: serves a disabled feature's alias (with duo_chat's model).
    ServeDisabledFeature,
    /// OpenAI front: a Chat sub-feature without a model of its own is unknown instead
    /// of falling back to duo_chat's model.
    NoChatFallback,
    /// Answers an endpoint without `/v1` with a made-up upstream 404, never calling it.
    FakeUpstream404,
    /// Serves a request whose model metadata it cannot use with the last model it
    /// served, as a gateway that falls back to a default model does.
    FallbackOnInvalidMetadata,
    /// Cuts a chat stream's chunked body after an error event.
    CutStreamAfterError,
    /// Sends a model without a key `Authorization: Bearer None`.
    StringifyMissingKey,
    /// Streams Bedrock Mistral ids through converse-stream and the others through
    /// invoke-with-response-stream.
    BedrockWrongOperation,
    /// Sends backends the client's own token instead of each model's key, as a
    /// pass-through proxy would.
    ForwardClientToken,
}

/// A front of the reference gateway a fault can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultFront {
    /// The AI gateway API (`kind: builtin`).
    AiGatewayApi,
    /// The OpenAI-compatible front (`kind: openai` without a URL).
    OpenaiFront,
}

impl FaultFront {
    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            FaultFront::AiGatewayApi => "AI gateway API",
            FaultFront::OpenaiFront => "OpenAI-compatible front",
        }
    }
}

impl Fault {
    /// The front whose rule the fault breaks, when only one has it.
    pub fn front(self) -> Option<FaultFront> {
        match self {
            Fault::ServeDisabledFeature | Fault::NoChatFallback => Some(FaultFront::OpenaiFront),
            Fault::RouteEmptyIdentifier
            | Fault::PromptsIgnoreModelMetadata
            | Fault::FallbackOnInvalidMetadata
            | Fault::CutStreamAfterError => Some(FaultFront::AiGatewayApi),
            _ => None,
        }
    }

    /// Whether the fault changes what `front` does.
    pub fn applies_to(self, front: FaultFront) -> bool {
        self.front().is_none_or(|f| f == front)
    }

    /// Every fault, in `--list-faults` order.
    pub const ALL: [Fault; 26] = [
        Fault::AppendV1,
        Fault::KeepTrailingSlash,
        Fault::DropApiKey,
        Fault::SendForeignKey,
        Fault::WrongModelName,
        Fault::IgnoreIdentifierPrefix,
        Fault::RouteEmptyIdentifier,
        Fault::AcceptMissingAuth,
        Fault::AcceptAnyToken,
        Fault::LeakApiKeyInError,
        Fault::ReuseFirstEndpoint,
        Fault::SwallowUpstreamError,
        Fault::PromptsIgnoreModelMetadata,
        Fault::BrokenStreamFraming,
        Fault::AzureBearerInsteadOfApiKey,
        Fault::AzureDropApiVersion,
        Fault::UnsignedBedrock,
        Fault::BedrockWrongRegion,
        Fault::ServeDisabledFeature,
        Fault::NoChatFallback,
        Fault::FakeUpstream404,
        Fault::FallbackOnInvalidMetadata,
        Fault::CutStreamAfterError,
        Fault::StringifyMissingKey,
        Fault::BedrockWrongOperation,
        Fault::ForwardClientToken,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::AppendV1 => "append-v1",
            Fault::KeepTrailingSlash => "keep-trailing-slash",
            Fault::DropApiKey => "drop-api-key",
            Fault::SendForeignKey => "send-foreign-key",
            Fault::WrongModelName => "wrong-model-name",
            Fault::IgnoreIdentifierPrefix => "ignore-identifier-prefix",
            Fault::RouteEmptyIdentifier => "route-empty-identifier",
            Fault::AcceptMissingAuth => "accept-missing-auth",
            Fault::AcceptAnyToken => "accept-any-token",
            Fault::LeakApiKeyInError => "leak-api-key-in-error",
            Fault::ReuseFirstEndpoint => "reuse-first-endpoint",
            Fault::SwallowUpstreamError => "swallow-upstream-error",
            Fault::PromptsIgnoreModelMetadata => "prompts-ignore-model-metadata",
            Fault::BrokenStreamFraming => "broken-stream-framing",
            Fault::AzureBearerInsteadOfApiKey => "azure-bearer-instead-of-api-key",
            Fault::AzureDropApiVersion => "azure-drop-api-version",
            Fault::UnsignedBedrock => "unsigned-bedrock",
            Fault::BedrockWrongRegion => "bedrock-wrong-region",
            Fault::ServeDisabledFeature => "serve-disabled-feature",
            Fault::NoChatFallback => "no-chat-fallback",
            Fault::FakeUpstream404 => "fake-upstream-404",
            Fault::FallbackOnInvalidMetadata => "fallback-on-invalid-metadata",
            Fault::CutStreamAfterError => "cut-stream-after-error",
            Fault::StringifyMissingKey => "stringify-missing-key",
            Fault::BedrockWrongOperation => "bedrock-wrong-operation",
            Fault::ForwardClientToken => "forward-client-token",
        }
    }

    /// The rule it breaks, for `--list-faults`.
    pub fn breaks(self) -> &'static str {
        match self {
            Fault::AppendV1 => "never add /v1: appends /v1 to every endpoint",
            Fault::KeepTrailingSlash => {
                "remove one trailing slash: keeps it, doubling the slash before /chat/completions"
            }
            Fault::DropApiKey => "forward the model's API key as Bearer: sends dummy_key instead",
            Fault::SendForeignKey => "a model without a key gets no key: sends the last key it saw",
            Fault::WrongModelName => "upstream model = identifier's model part: sends the family name",
            Fault::IgnoreIdentifierPrefix => "strip the provider prefix: sends custom_openai/<model> as the model",
            Fault::RouteEmptyIdentifier => "empty identifier is an error with no upstream call: calls upstream anyway",
            Fault::AcceptMissingAuth => "requests without credentials get 401: serves them",
            Fault::AcceptAnyToken => "requests with a wrong token get 401: serves them",
            Fault::LeakApiKeyInError => "keys never appear in responses: puts the API key in error messages",
            Fault::ReuseFirstEndpoint => "each model goes to its own endpoint: caches one upstream per family",
            Fault::SwallowUpstreamError => "upstream errors reach the client: answers 200 with empty content",
            Fault::PromptsIgnoreModelMetadata => {
                "each feature goes to its mapped model: /v1/prompts/* sticks to the first model"
            }
            Fault::BrokenStreamFraming => {
                "streams are well-formed (ndjson chat, OpenAI-front SSE): emits a truncated event"
            }
            Fault::AzureBearerInsteadOfApiKey => "Azure keys go in the api-key header: sends Authorization: Bearer",
            Fault::AzureDropApiVersion => "Azure calls carry api-version: leaves it out (Azure answers 404)",
            Fault::UnsignedBedrock => "Bedrock calls are SigV4-signed: sends them unsigned",
            Fault::BedrockWrongRegion => "Bedrock calls are signed for the gateway's region: signs for another one",
            Fault::ServeDisabledFeature => {
                "a disabled feature is refused: the OpenAI front serves it with duo_chat's model"
            }
            Fault::NoChatFallback => {
                "Chat sub-features without a model fall back to duo_chat's: the OpenAI front answers unknown model"
            }
            Fault::FakeUpstream404 => {
                "an endpoint without /v1 is called and the backend's 404 relayed: answers a 404 without calling it"
            }
            Fault::FallbackOnInvalidMetadata => {
                "invalid model metadata is refused: serves the request with the last model it served"
            }
            Fault::CutStreamAfterError => {
                "a chat stream ends properly after an error event: cuts the chunked body there"
            }
            Fault::StringifyMissingKey => "a model without a key gets no credential: sends `Bearer None`",
            Fault::BedrockWrongOperation => {
                "Bedrock Mistral ids stream through invoke, the others through converse: swaps them"
            }
            Fault::ForwardClientToken => "each model gets its own key: sends every backend the client's token instead",
        }
    }

    /// Looks a fault up by name.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}
