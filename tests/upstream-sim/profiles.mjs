// profiles.mjs: provider dialects for the upstream simulator (sim.mjs --profile NAME), each quirk with its source.
//
// A profile is data that sim.mjs reads at a few points: how it names tool-call ids, how it streams
// tool calls, usage, reasoning, the end of a stream and errors, and which requests it refuses.
// `openai` is the simulator's own behaviour and changes nothing. Every other key below is one
// quirk of one provider's OpenAI-compatible endpoint, with the provider document or public issue
// thread it comes from in a comment. README.md has the same list as a table.
//
// Keys (all optional; absent = what OpenAI does):
//   ids            tool-call ids: 'openai' (the scripted id, or call_ + 24), 'mistral9' (9 of [A-Za-z0-9]),
//                  'ollama' (call_ + 8 of [a-z0-9]), 'hex24' (call_ + 24 hex), 'vllm' (chatcmpl-tool- + 32 hex),
//                  'digits9' (9 digits), 'empty' (""), 'kimi' (functions.<name>:<position in the answer>), 'seq'
//                  ("0", "1", ...: the position in the answer); the last two recur in later rounds. Derived from the scripted id (see wireId), so tests can predict them.
//   stream.index   'openai' | 'omit' (no index in tool-call deltas) | 'zero' (every call index 0)
//   stream.calls   'openai' (header delta, then argument fragments, call after call) | 'whole' (each call whole in
//                  one delta, one call per chunk) | 'one_chunk' (every call whole, all in one chunk)
//   stream.cont    continuation deltas restate {id: '' | 'repeat', name: '', type: true}
//   stream.args_null_tail  one more continuation per call with "arguments": null
//   stream.nulls   deltas carry explicit null role/content/tool_calls
//   stream.tool_finish     finish_reason of a tool-call answer ('tool_calls' unless said)
//   stream.done    false: no `data: [DONE]` at the end
//   stream.content_type  the content-type of a streamed answer (the body stays SSE)
//   stream.comments  SSE comment lines sent before the first chunk
//   stream.preamble  a first chunk with choices [] (Azure's prompt filter results)
//   stream.chunk_extra / stream.choice_extra  extra members of every chunk / every choice
//   stream.openai_extras  false: no service_tier, system_fingerprint, obfuscation, logprobs
//   usage          streamed usage: 'openai' (include_usage only, a trailing choices:[] chunk), 'every_cumulative'
//                  (every chunk, running totals, always), 'finish_chunk' (top-level on the finish chunk, always),
//                  'choice' (choices[0].usage on the finish chunk, always), 'x_groq' (x_groq.usage on the finish
//                  chunk, always; plus the trailing chunk with include_usage), 'trailing_always' (the trailing chunk always)
//   reasoning      {field: 'reasoning_content' | 'reasoning', always?: text}: a turn's "reasoning" text is sent as
//                  deltas before the content and as a message member; `always` = sent even when the turn has none
//   require_reasoning_back  400 when an assistant message with tool_calls after the last user message lacks it
//   errors         error body shape: 'openai' | 'string' ({"error": "msg"}) | 'list' ([{"error": {code, message, status}}])
//                  | 'object_error' ({"object": "error", message, type, param, code}) | 'numeric_code'
//                  ({"error": {code: 400, message, type}}) | 'detail' ({"detail": "msg"}: FastAPI servers,
//                  https://github.com/abetlen/llama-cpp-python/issues/187)
//   request.*      rules the provider enforces on requests: auth 'api-key', path 'azure', no_images, tool_id_re,
//                  schema_types, assistant_content_required, stream_options ('reject_before' api-version),
//                  max_tokens_models (a model pattern that takes max_completion_tokens only)
//   message_extra / completion_extra / choice_extra  extra members of non-streamed answers
//   empty_tool_calls  non-streamed text answers carry "tool_calls": []
//   gateway_env    settings a gateway needs to reach this upstream (the matrix runner passes them on)

import crypto from 'node:crypto';

export const PROFILES = {
	openai: {
		title: 'OpenAI (the simulator\'s own behaviour)',
	},

	azure: {
		title: 'Azure OpenAI',
		request: {
			// api-key header, /openai/deployments/{deployment}/chat/completions?api-version=...
			// https://learn.microsoft.com/en-us/azure/ai-services/openai/reference#chat-completions
			// (and https://learn.microsoft.com/en-us/answers/questions/2225315 : no api-version or a wrong path -> 404)
			auth: 'api-key',
			path: 'azure',
			// api-versions before 2024-09-01-preview: 400 "Unrecognized request argument supplied: stream_options"
			// https://github.com/langchain-ai/langchain/pull/23552 , https://github.com/openai/openai-python/issues/1469
			stream_options: { reject_before: '2024-09-01' },
			// reasoning deployments (o-series, gpt-5): 400 "Unsupported parameter: 'max_tokens' is not supported with
			// this model. Use 'max_completion_tokens' instead." https://github.com/langgenius/dify/issues/9746 ,
			// https://github.com/lobehub/lobehub/issues/5909 , https://github.com/owndev/Open-WebUI-Functions/issues/136
			max_tokens_models: '^(o[1-9]|gpt-5)',
		},
		stream: {
			// the first chunk has choices [] and only the prompt filter results, with id "" and created 0
			// https://github.com/AbanteAI/archive-old-cli-mentat/issues/429 , https://github.com/Azure/azure-sdk-for-go/issues/21086
			preamble: {
				choices: [], created: 0, id: '', model: '', object: '',
				prompt_filter_results: [{ prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: 'safe' }, self_harm: { filtered: false, severity: 'safe' }, sexual: { filtered: false, severity: 'safe' }, violence: { filtered: false, severity: 'safe' } } }],
			},
			// every choice carries content_filter_results: https://github.com/rksm/org-ai/issues/90
			choice_extra: { content_filter_results: {} },
		},
		choice_extra: { content_filter_results: { hate: { filtered: false, severity: 'safe' } } },
		completion_extra: { prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] },
		// Azure's own errors (a path or api-version it does not serve, a wrong key) have a string code and no type:
		// {"error": {"code": "404", "message": "Resource not found"}} (sim.mjs AZURE_404, AZURE_401);
		// the model's errors come in OpenAI's shape (https://github.com/langchain-ai/langchain/pull/23552)
		// the gateway reaches a deployment; the api-version is a setting of its own (not yet in the gateway)
		gateway_env: sim => ({ OPENAI_BASE_URL: `${sim.base}/openai/deployments/sim-model`, OPENAI_API_VERSION: '2024-10-21', MCPGW_UPSTREAM_DIALECT: 'azure' }),
	},

	deepseek: {
		title: 'DeepSeek',
		// thinking mode is on by default: reasoning_content deltas and messages
		// https://api-docs.deepseek.com/guides/thinking_mode
		reasoning: { field: 'reasoning_content', always: 'Thinking it over.' },
		// a thinking-mode tool round sent back without reasoning_content: 400 with this exact text
		// https://github.com/mnfst/modelparams.dev/issues/29 , https://github.com/syt2/paper-chat-for-zotero/issues/16
		require_reasoning_back: {
			message: 'The `reasoning_content` in the thinking mode must be passed back to the API.',
			type: 'invalid_request_error', code: 'invalid_request_error',
		},
		stream: {
			// streamed continuation deltas repeat the call's id: https://github.com/langchain4j/langchain4j/pull/4544
			cont: { id: 'repeat' },
			openai_extras: false,
		},
		request: {
			// text-only: an image_url part is a 400 from the JSON deserializer
			// https://github.com/BenedictKing/ccx/issues/95 , https://github.com/jxxghp/MoviePilot/issues/5863
			no_images: true,
		},
	},

	dashscope: {
		title: 'Qwen (Alibaba Cloud DashScope, OpenAI-compatible mode)',
		ids: 'hex24', // call_8589a72cf9984736a78dc07b: https://github.com/spring-projects/spring-ai/issues/4790
		stream: {
			// continuation deltas restate "id": "" (and "type", an empty name): https://github.com/symfony/ai/pull/2220 ,
			// https://github.com/spring-projects/spring-ai/issues/4790
			cont: { id: '', name: '', type: true },
			// a last continuation with "arguments": null, then the finish in an empty delta
			// https://github.com/voocel/ainovel-cli/issues/52
			args_null_tail: true,
			openai_extras: false,
		},
		// Qwen3 thinking models: reasoning_content deltas (additionalProperties={reasoning_content=} in spring-ai#4790)
		reasoning: { field: 'reasoning_content' },
	},

	gemini: {
		title: 'Google Gemini (OpenAI compatibility endpoint)',
		// tool calls with "id": "" (non-streamed and streamed): https://github.com/vercel/ai/issues/6663 ,
		// https://github.com/run-llama/llama_index/pull/20207 , https://github.com/AstrBotDevs/AstrBot/issues/6661
		ids: 'empty',
		stream: {
			// no index, whole calls, several in one chunk: https://github.com/AstrBotDevs/AstrBot/issues/6661 ,
			// https://github.com/open-webui/computer/issues/224 , https://github.com/THU-MAIC/OpenMAIC/issues/1556
			index: 'omit',
			calls: 'one_chunk',
			// a tool-call answer may finish with "stop": https://github.com/open-webui/computer/issues/224
			tool_finish: 'stop',
			openai_extras: false,
		},
		// errors are a list: [{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}]
		// https://github.com/SuzumiyaAkizuki/ComfyUI-NewBie-LLM-Formatter/issues/3 , https://github.com/Simpleyyt/ai-manus/issues/101
		errors: 'list',
		request: {
			// every schema node needs a type: "Invalid value at 'tools[0].function_declarations[1].parameters
			// .properties[1].value.any_of[0].type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"\""
			// https://github.com/zereight/gitlab-mcp/issues/166 , https://github.com/agno-agi/agno/issues/3298
			schema_types: true,
		},
	},

	openrouter: {
		title: 'OpenRouter',
		stream: {
			// SSE comments while the provider is working: https://github.com/openai/openai-go/issues/227 ,
			// https://github.com/mnfst/llm-gateway/issues/2053
			comments: [': OPENROUTER PROCESSING', ': OPENROUTER PROCESSING'],
			// provider and native_finish_reason in every chunk: https://github.com/openai/openai-go/issues/227
			chunk_extra: { provider: 'SimProvider' },
			choice_extra: { native_finish_reason: null },
			openai_extras: false,
		},
		// a final chunk with choices [] and usage (with cost): https://github.com/Effect-TS/effect/pull/6117
		usage: 'trailing_always',
		// reasoning tokens as "reasoning": https://openrouter.ai/docs/use-cases/reasoning-tokens
		reasoning: { field: 'reasoning' },
		completion_extra: { provider: 'SimProvider' },
		// {"error": {"code": 400, "message": ...}}: a numeric code: https://openrouter.ai/docs/api-reference/errors
		errors: 'numeric_code',
	},

	ollama: {
		title: 'Ollama (/v1)',
		ids: 'ollama', // call_ + 8 lowercase alphanumerics (e.g. https://github.com/ollama/ollama/issues/15457 shows short ids)
		stream: {
			// tool-call deltas without index: https://github.com/ollama/ollama/issues/7881 ; calls come whole, fully
			// parsed, in one chunk: https://github.com/ollama/ollama/issues/11633 , https://github.com/ollama/ollama/issues/12557
			index: 'omit',
			calls: 'one_chunk',
			openai_extras: false,
		},
	},

	vllm: {
		title: 'vLLM',
		// ids chatcmpl-tool-<32 hex>: https://github.com/GoogleCloudPlatform/kubectl-ai/pull/559
		ids: 'vllm',
		stream: {
			// every call streamed with index 0, continuations with "id": "": https://github.com/InternLM/lmdeploy/issues/3412
			index: 'zero',
			cont: { id: '' },
			openai_extras: false,
		},
		// reasoning parsers: reasoning_content deltas: https://github.com/vllm-project/vllm/issues/17614
		reasoning: { field: 'reasoning_content' },
		// {"object": "error", "message": ..., "type": "BadRequestError", "param": null, "code": 400}
		// https://github.com/QwenLM/Qwen3/issues/241 , https://github.com/browser-use/browser-use/issues/74
		errors: 'object_error',
	},

	llamacpp: {
		title: 'llama.cpp llama-server (and servers built on it)',
		stream: {
			// no data: [DONE] at the end: https://github.com/ikawrakow/ik_llama.cpp/issues/467
			done: false,
			// timings in the finish chunk: https://github.com/ggml-org/llama.cpp/issues/12137
			finish_extra: { timings: { prompt_n: 1, prompt_ms: 1.0, predicted_n: 1, predicted_ms: 1.0 } },
			openai_extras: false,
		},
		// usage in the finish chunk without stream_options: https://github.com/ggml-org/llama.cpp/issues/12137
		usage: 'finish_chunk',
		completion_extra: { timings: { prompt_n: 1, prompt_ms: 1.0, predicted_n: 1, predicted_ms: 1.0 } },
		// {"error": {"code": 400, "message": ..., "type": "invalid_request_error"}}
		// https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md (error format)
		errors: 'numeric_code',
	},

	lmstudio: {
		title: 'LM Studio',
		ids: 'digits9', // "id": "193629320": https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues/830
		stream: {
			// continuation deltas with an empty function name: https://github.com/0xPlaygrounds/rig/pull/442 ,
			// https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues/649
			cont: { name: '' },
			openai_extras: false,
		},
		// text answers always carry "tool_calls": []: https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues/1318
		empty_tool_calls: true,
		// {"error": "..."}, a bare string: https://github.com/algorithmicsuperintelligence/optillm/issues/272 ,
		// https://github.com/lmstudio-ai/lmstudio-bug-tracker/issues/618
		errors: 'string',
	},

	mistral: {
		title: 'Mistral AI',
		ids: 'mistral9',
		request: {
			// ids sent back must be 9 of [a-zA-Z0-9]: "Tool call id was X but must be a-z, A-Z, 0-9, with a length of 9."
			// https://github.com/langchain-ai/langchain/pull/24668 , https://github.com/jackmpcollins/magentic/issues/276 ,
			// https://github.com/nearai/ironclaw/issues/1241
			tool_id_re: '^[a-zA-Z0-9]{9}$',
		},
		// {"object": "error", "message": ..., "type": "invalid_request_error", "param": null, "code": null}
		// https://github.com/langchain-ai/langchain/pull/24668 , https://github.com/nearai/ironclaw/issues/1241
		errors: 'object_error',
		stream: { openai_extras: false },
	},

	groq: {
		title: 'Groq',
		stream: {
			// a tool call arrives whole in one chunk: https://github.com/ogx-ai/ogx/pull/630 ,
			// https://github.com/langchain-ai/langchainjs/pull/6203
			calls: 'whole',
			openai_extras: false,
		},
		// usage in x_groq.usage of the last chunk; with include_usage also the usage chunk
		// https://console.groq.com/docs/api-reference , https://github.com/Portkey-AI/gateway/issues/1338
		usage: 'x_groq',
	},

	moonshot: {
		title: 'Moonshot AI (Kimi)',
		// ids functions.<name>:<index>: https://github.com/MoonshotAI/Kimi-K2/blob/main/docs/tool_call_guidance.md ;
		// the index is the position in the answer, so the same id recurs in later rounds:
		// https://github.com/fw-ai/fireconnect/issues/16 (kimi-k3), https://github.com/can1357/oh-my-pi/issues/2055
		ids: 'kimi',
		stream: {
			// tool-call deltas may lack index: https://github.com/vercel/ai/pull/19727
			index: 'omit',
			openai_extras: false,
		},
		// usage inside choices[0] of the finish chunk: https://github.com/northes/go-moonshot/issues/17 ,
		// https://github.com/higress-group/higress/pull/1568 , https://github.com/earendil-works/pi/issues/2017
		usage: 'choice',
	},

	zhipu: {
		title: 'Zhipu AI (GLM)',
		stream: {
			// the whole call, arguments included, in one delta: https://github.com/GoogleCloudPlatform/kubectl-ai/pull/559
			// (GLM-4.6), https://github.com/sgl-project/sglang/issues/11888
			calls: 'whole',
			openai_extras: false,
		},
	},

	perplexity: {
		title: 'Perplexity',
		stream: {
			// citations in every chunk: https://github.com/BerriAI/litellm/issues/13777
			chunk_extra: { citations: ['https://example.com/sim-source'] },
			openai_extras: false,
		},
		// usage in every chunk, running totals: https://github.com/perplexityai/api-discussion/issues/175
		usage: 'every_cumulative',
		// citations and search_results after the answer: https://github.com/symfony/ai/pull/388
		completion_extra: { citations: ['https://example.com/sim-source'], search_results: [{ title: 'sim', url: 'https://example.com/sim-source' }] },
	},

	sglang: {
		title: 'SGLang',
		stream: {
			// explicit nulls in deltas, usage: null and matched_stop in every chunk:
			// https://github.com/sgl-project/sglang/issues/6310
			nulls: true,
			chunk_extra: { usage: null },
			choice_extra: { matched_stop: null },
			// several calls streamed with a wrong index (all 0), the id repeated on every continuation:
			// https://github.com/InternLM/lmdeploy/issues/3412 , https://github.com/sgl-project/sglang/issues/6310
			index: 'zero',
			cont: { id: 'repeat' },
			openai_extras: false,
		},
		reasoning: { field: 'reasoning_content' }, // https://github.com/sgl-project/sglang/issues/6310
		// ids "0", "1", ... (the position in the answer): https://github.com/InternLM/lmdeploy/issues/3412 ,
		// https://github.com/sgl-project/sglang/issues/5661
		ids: 'seq',
		request: {
			// an assistant message without a "content" member is a pydantic error, 400 (SGLang mid-2025:
			// `content: Union[str, List[...], None]` with no default): https://github.com/sgl-project/sglang/issues/8074 .
			// Older SGLang (0.4.3) refused "content": null too, answering 500 "Internal Server Error"
			// (https://github.com/sgl-project/sglang/issues/4236); today's protocol.py accepts both
			// (`= Field(default=None)`). The profile models the 2025 release: null accepted, a missing member refused.
			assistant_content_required: 'member',
		},
		errors: 'object_error', // vLLM's shape, which SGLang's OpenAI server copies
	},
};

export const PROFILE_NAMES = Object.keys(PROFILES);

/** the profile named name (throws on an unknown name, listing the known ones) */
export function getProfile(name) {
	const p = PROFILES[name ?? 'openai'];
	if (!p) throw new Error(`unknown profile '${name}' (known: ${PROFILE_NAMES.join(', ')})`);
	return p;
}

const hash = s => crypto.createHash('sha256').update(String(s)).digest();

/**
 * wireId(profile, scriptedId, call): the tool-call id the simulator sends for a scripted call under that profile
 * (a name or a profile object). Deterministic in scriptedId, so a test can predict it ('' for profiles that
 * send empty ids); under `openai` the scripted id itself (null when there is none: sim.mjs makes a random one).
 * call = {name, index} (the function and its position in the answer) is what the 'kimi' style derives from.
 */
export function wireId(profile, scriptedId, call = {}) {
	const p = typeof profile === 'string' ? getProfile(profile) : profile;
	const style = p.ids ?? 'openai';
	if (style === 'openai') return scriptedId ?? null;
	if (style === 'empty') return '';
	if (style === 'kimi') return `functions.${call.name}:${call.index ?? 0}`;
	if (style === 'seq') return String(call.index ?? 0);
	const seed = hash(scriptedId ?? crypto.randomUUID());
	const pick = (alphabet, n) => Array.from(seed.subarray(0, n), b => alphabet[b % alphabet.length]).join('');
	switch (style) {
		case 'mistral9': return pick('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 9);
		case 'ollama': return 'call_' + pick('abcdefghijklmnopqrstuvwxyz0123456789', 8);
		case 'hex24': return 'call_' + seed.toString('hex').slice(0, 24);
		case 'vllm': return 'chatcmpl-tool-' + seed.toString('hex').slice(0, 32);
		case 'digits9': return pick('0123456789', 9).replace(/^0/, '1');
		default: throw new Error(`profile ids style '${style}' unknown`);
	}
}

/** idsPredictable(profile): whether wireId() tells a call's id from its scripted id alone (not '' and not positional) */
export function idsPredictable(profile) {
	const p = typeof profile === 'string' ? getProfile(profile) : profile;
	return !['empty', 'kimi', 'seq'].includes(p.ids ?? 'openai');
}

/**
 * errorBody(profile, status, {message, type, param, code}, shape): the body the provider sends for an error, in its
 * shape (or in the shape named, for a turn's error.shape).
 */
export function errorBody(profile, status, e, shape = profile.errors ?? 'openai') {
	switch (shape) {
		case 'openai': return { error: { message: e.message, type: e.type, param: e.param ?? null, code: e.code ?? null } };
		case 'string': return { error: e.message };
		case 'detail': return { detail: e.message };
		case 'list': return [{ error: { code: status, message: e.message, status: googleStatus(status) } }];
		case 'object_error': return { object: 'error', message: e.message, type: e.type ?? 'BadRequestError', param: e.param ?? null, code: e.code ?? status };
		case 'numeric_code': return { error: { code: status, message: e.message, type: e.type } };
		default: throw new Error(`profile errors shape '${shape}' unknown`);
	}
}

function googleStatus(status) {
	return { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' }[status] ?? 'UNKNOWN';
}

/**
 * checkRequest(profile, body, query): the provider's own request rules, after the OpenAI ones.
 * Returns null, or {status, error: {message, type, param, code}} (or {status, raw, content_type} for a non-JSON answer).
 */
export function checkRequest(profile, body, query) {
	const r = profile.request ?? {};
	const msgs = Array.isArray(body.messages) ? body.messages : [];
	if (r.max_tokens_models && body.max_tokens !== undefined && new RegExp(r.max_tokens_models).test(String(body.model))) {
		return { status: 400, error: { message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", type: 'invalid_request_error', param: 'max_tokens', code: 'unsupported_parameter' } };
	}
	if (r.stream_options?.reject_before && body.stream_options !== undefined && (query.get('api-version') ?? '') < r.stream_options.reject_before) {
		return { status: 400, error: { message: 'Unrecognized request argument supplied: stream_options', type: 'invalid_request_error', param: null, code: null } };
	}
	if (r.no_images) {
		for (let i = 0; i < msgs.length; i++) {
			const c = msgs[i]?.content;
			if (Array.isArray(c) && c.some(p => p?.type && p.type !== 'text')) {
				const bad = c.find(p => p?.type && p.type !== 'text').type;
				const col = JSON.stringify(body).indexOf(`"${bad}"`) + 1;
				return { status: 400, error: { message: `Failed to deserialize the JSON body into the target type: messages[${i}]: unknown variant \`${bad}\`, expected \`text\` at line 1 column ${col}`, type: 'invalid_request_error', param: null, code: 'invalid_request_error' } };
			}
		}
	}
	if (r.tool_id_re) {
		const re = new RegExp(r.tool_id_re);
		for (const m of msgs) {
			const ids = m?.role === 'assistant' ? (m.tool_calls ?? []).map(t => t?.id) : m?.role === 'tool' ? [m.tool_call_id] : [];
			for (const id of ids) {
				if (typeof id === 'string' && !re.test(id)) {
					return { status: 400, error: { message: `Tool call id was ${id} but must be a-z, A-Z, 0-9, with a length of 9.`, type: 'invalid_request_error', param: null, code: null } };
				}
			}
		}
	}
	if (r.assistant_content_required === 'member') {
		const i = msgs.findIndex(m => m?.role === 'assistant' && m.content === undefined);
		if (i >= 0) {
			return { status: 400, error: { object: 'error', message: `1 validation error for ChatCompletionRequest\nmessages.${i}.content\n  Field required [type=missing, input_value=${JSON.stringify(msgs[i]).slice(0, 80)}, input_type=dict]`, type: 'BadRequestError', param: null, code: 400 } };
		}
	}
	if (r.schema_types && Array.isArray(body.tools)) {
		for (let i = 0; i < body.tools.length; i++) {
			const where = untyped(body.tools[i]?.function?.parameters, `tools[0].function_declarations[${i}].parameters`);
			if (where) {
				return { status: 400, error: { message: `Invalid value at '${where}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), ""`, type: 'invalid_request_error' } };
			}
		}
	}
	if (profile.require_reasoning_back) {
		const field = profile.reasoning.field;
		let lastUser = -1;
		msgs.forEach((m, i) => { if (m?.role === 'user') lastUser = i; });
		for (let i = lastUser + 1; i < msgs.length; i++) {
			const m = msgs[i];
			if (m?.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length && typeof m[field] !== 'string') {
				return { status: 400, error: { ...profile.require_reasoning_back, param: null } };
			}
		}
	}
	return null;
}

// the path of the first schema node without a type (Gemini's Schema needs one everywhere), or null
function untyped(s, path) {
	if (s === undefined || s === null) return null;
	if (typeof s !== 'object') return path;
	if (Array.isArray(s.anyOf)) {
		for (let i = 0; i < s.anyOf.length; i++) {
			const w = untyped(s.anyOf[i], `${path}.any_of[${i}]`);
			if (w) return w;
		}
		return null;
	}
	if (s.type === undefined || s.type === '') return path;
	if (s.properties && typeof s.properties === 'object') {
		let k = 0;
		for (const v of Object.values(s.properties)) {
			const w = untyped(v, `${path}.properties[${k++}].value`);
			if (w) return w;
		}
	}
	if (s.items) return untyped(s.items, `${path}.items`);
	return null;
}
