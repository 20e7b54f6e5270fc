"""What a run sends: the MVP's one prompt, prompts of set input sizes (tiers), or a file of the user's own prompts.

Prompts of a tier are built here, deterministically, with no download and no tokenizer: a task and a synthetic
document of common English words, one token each in the BPE vocabularies of the default models (o200k for OpenAI's
and gpt-oss), sized by a calibrated number of tokens per word. What a provider counted is stored beside the tier.
Imports nothing of providers or storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import hashlib
import json
from pathlib import Path
import random
import re
from typing import Any, Mapping
import uuid

from .agent_workloads import (
    AGENT_KEYS, ExpectedTool, Turn, parse_expect_tool, parse_think_time, parse_tool_choice, parse_tool_results,
    parse_tools, parse_turns, check_schema,
)
from .dialogue import tool_name
from .errors import ConfigError
from .expectations import Expectation
from .textfile import MAX_PROMPT_BYTES, json_line, read_bounded, shown, utf8_text

# Input-length tiers (tokens) and the output cap that fits each, as the public references use them.
TIER_OUTPUT_CAPS = {100: 300, 1_000: 1_000, 10_000: 1_500, 100_000: 2_000}
MAX_TIER_TOKENS = 200_000
CACHE_MODES = ("bust", "warm", "off")
MAX_PROMPTS = 10_000  # a prompt file's: each is sent to every model, every round
MAX_OUTPUT_TOKENS = 1_000_000_000  # a prompt's own max_tokens: far above any model's, a bound all the same

TIER_TASK = "Read the document below, then summarise it in three sentences.\n\nDocument:\n"
# o200k tokens per word of the synthetic document: each word is one token and each sentence ends in a period token
# (measured with the o200k_base vocabulary: 10,930 tokens for 10,000 words, 1.093 a word).
TOKENS_PER_WORD = 1.093
# A chat request adds a few tokens around the message (role markers); the task itself is counted in.
TEMPLATE_TOKENS = 7
_WORDS = tuple("""
time year people way day man thing woman life child world school state family student group country problem hand
part place case week company system program question work government number night point home water room mother area
money story fact month lot right study book eye job word business issue side kind head house service friend father
power hour game line end member law car city community name president team minute idea kid body information back
parent face others level office door health person art war history party result change morning reason research girl
guy moment air teacher force education foot boy age policy process music market sense nation plan college interest
death experience effect use class control care field development role effort rate heart drug show leader light
voice wife police mind price report decision son view relationship town road arm difference value building action
model season society tax director position player record paper space ground form event official matter center
couple site project activity star table need court oil situation cost industry figure street image phone data
picture practice piece land product doctor wall patient worker news test movie north love support technology step
baby computer type attention film tree source organization hair window evidence population
""".split())


@dataclass(frozen=True)
class Prompt:
    """One prompt of a workload: the messages to send, and what identifies it in the results."""

    prompt_id: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    input_tier: int | None = None
    max_tokens: int | None = None  # the prompt's own output cap (a prompt file's max_tokens), over any other
    expect: Expectation | None = field(default=None, compare=False)
    # Agent-shaped traffic (agent_workloads.py, docs/workloads.md): a conversation's user turns (then `messages` holds
    # the system message, if any, and every turn's text, in order), the tools offered and what is judged.
    turns: tuple[Turn, ...] = ()
    think_time_s: float = 0.0
    tools: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)
    tool_choice: str | Mapping[str, Any] | None = field(default=None, compare=False)
    expect_tool: ExpectedTool | None = field(default=None, compare=False)
    tool_results: Mapping[str, str] = field(default_factory=dict, compare=False)
    schema: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        """The user's part, as shown and stored (the system message, if any, is stored with the messages)."""
        return "\n\n".join(content for role, content in self.messages if role == "user")

    def with_marker(self, marker: str) -> "Prompt":
        """The same prompt with a unique marker in front of its first message, so no prompt cache can serve it."""
        (role, content), *rest = self.messages
        return replace(self, messages=((role, f"[{marker}] {content}"), *rest))


@dataclass(frozen=True)
class Workload:
    """What a run sends to every provider and model."""

    name: str  # 'default' | 'tiers' | the prompt file's name
    prompts: tuple[Prompt, ...]
    cache_mode: str = "off"


def prompt_id_for(messages: tuple[tuple[str, str], ...]) -> str:
    """A short, stable id from the prompt's content."""
    digest = hashlib.sha256(json.dumps(messages, ensure_ascii=False).encode()).hexdigest()
    return digest[:12]


def default_workload(prompt: str) -> Workload:
    """The MVP's run: one prompt, sent as it is."""
    messages = (("user", prompt),)
    return Workload("default", (Prompt(prompt_id_for(messages), messages),), cache_mode="off")


def synthetic_document(tokens: int, seed: int = 0) -> str:
    """Sentences of common words, about `tokens` tokens long; the same text for the same size and seed."""
    rng = random.Random(f"{seed}-{tokens}")
    words_needed = max(1, round(tokens / TOKENS_PER_WORD))
    words = rng.choices(_WORDS, k=words_needed)
    sentences, start = [], 0
    while start < len(words):
        end = min(len(words), start + rng.randint(8, 14))
        sentence = " ".join(words[start:end])
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        start = end
    return " ".join(sentences)


def tier_prompt(tokens: int) -> Prompt:
    """A prompt of about `tokens` input tokens in all (task, document and the chat template's few)."""
    document_tokens = max(1, tokens - TEMPLATE_TOKENS - round(len(TIER_TASK.split()) * TOKENS_PER_WORD))
    messages = (("user", TIER_TASK + synthetic_document(document_tokens)),)
    return Prompt(f"tier-{tokens}", messages, input_tier=tokens)


def tier_output_cap(tokens: int) -> int:
    """The output cap that fits a tier: that of the nearest standard tier at or above it (the largest beyond)."""
    fitting = [tier for tier in sorted(TIER_OUTPUT_CAPS) if tier >= tokens]
    return TIER_OUTPUT_CAPS[fitting[0] if fitting else max(TIER_OUTPUT_CAPS)]


def output_cap(prompt: Prompt, flag: int | None, default: int) -> int:
    """max_tokens for a prompt: its own, else --max-tokens, else its tier's cap, else the default."""
    if prompt.max_tokens is not None:
        return prompt.max_tokens
    if flag is not None:
        return flag
    return tier_output_cap(prompt.input_tier) if prompt.input_tier is not None else default


def prompt_record(prompt: Prompt) -> dict[str, object]:
    """How a prompt is stored with its run: as it is, or a tier's by its size and digest (it is rebuilt exactly)."""
    record: dict[str, object] = {"id": prompt.prompt_id}
    if prompt.input_tier is not None:
        text = prompt.text.encode("utf-8")
        record.update(tier=prompt.input_tier, chars=len(prompt.text), sha256=hashlib.sha256(text).hexdigest())
    else:
        record["messages"] = [{"role": role, "content": content} for role, content in prompt.messages]
    if prompt.max_tokens is not None:
        record["max_tokens"] = prompt.max_tokens
    if prompt.expect is not None:
        record["expect"] = prompt.expect.text
    if prompt.turns:
        del record["messages"]
        if prompt.messages[0][0] == "system":
            record["system"] = prompt.messages[0][1]
        record["turns"] = [{"text": t.text, **({"expect": t.expect.text} if t.expect else {})} for t in prompt.turns]
        if prompt.think_time_s:
            record["think_time_s"] = prompt.think_time_s
    if prompt.tools:
        record["tools"] = list(prompt.tools)
    for key in ("tool_choice", "schema"):
        if getattr(prompt, key) is not None:
            record[key] = getattr(prompt, key)
    if prompt.expect_tool is not None:
        expected = prompt.expect_tool
        record["expect_tool"] = expected.name if expected.arguments is None else {
            "name": expected.name, "arguments": expected.arguments}
    if prompt.tool_results:
        record["tool_results"] = dict(prompt.tool_results)
    return record


def parse_tiers(text: str) -> tuple[int, ...]:
    """`--input-tokens 100,1000,10k` -> (100, 1000, 10000)."""
    tiers = []
    for part in (p.strip().lower() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(k?)", part)
        if not match:
            raise ConfigError(f"--input-tokens takes sizes like 100,1000,10k, not {part!r}")
        value = int(match.group(1)) * (1000 if match.group(2) else 1)
        if not 1 <= value <= MAX_TIER_TOKENS:
            raise ConfigError(f"--input-tokens: {value:,} is outside 1..{MAX_TIER_TOKENS:,} tokens")
        if value not in tiers:
            tiers.append(value)
    if not tiers:
        raise ConfigError("--input-tokens needs at least one size, like 100,1000,10000")
    return tuple(tiers)


def tier_workload(tiers: tuple[int, ...], cache_mode: str = "bust") -> Workload:
    return Workload("tiers", tuple(tier_prompt(t) for t in tiers), cache_mode)


def _messages_from_object(item: dict, where: str) -> tuple[tuple[str, str], ...]:
    system = item.get("system")
    if "messages" in item:
        raw = item["messages"]
        if not isinstance(raw, list) or not raw or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in raw
        ):
            raise ConfigError(f"{where}: messages must be a list of {{\"role\": ..., \"content\": ...}} objects")
        messages = tuple((m["role"], m["content"]) for m in raw)
    elif isinstance(item.get("prompt"), str) and item["prompt"].strip():
        messages = (("user", item["prompt"]),)
    else:
        raise ConfigError(f"{where}: give \"prompt\" (text) or \"messages\"")
    if system is not None:
        if not isinstance(system, str):
            raise ConfigError(f"{where}: system must be text")
        messages = (("system", system), *messages)
    return messages


def _prompt_from_object(item: object, where: str) -> Prompt:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: each line must be a JSON object")
    unknown = sorted(set(item) - {"prompt", "messages", "id", "max_tokens", "system", "expect", *AGENT_KEYS})
    if unknown:
        raise ConfigError(f"{where}: unknown key {shown(unknown[0])}; allowed: prompt, messages, id, max_tokens, "
                          f"system, expect, {', '.join(AGENT_KEYS)}")
    agent = _agent_fields(item, where)
    if "turns" in item:
        if "prompt" in item or "messages" in item:
            raise ConfigError(f"{where}: turns is a conversation of its own: give turns, or prompt/messages, not both")
        system = item.get("system")
        if system is not None and not isinstance(system, str):
            raise ConfigError(f"{where}: system must be text")
        messages = (*((("system", system),) if system is not None else ()),
                    *(("user", turn.text) for turn in agent["turns"]))
    else:
        messages = _messages_from_object(item, where)
    max_tokens = item.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigError(f"{where}: max_tokens must be a whole number of at least 1")
    if max_tokens is not None and max_tokens > MAX_OUTPUT_TOKENS:
        raise ConfigError(f"{where}: max_tokens must be at most {MAX_OUTPUT_TOKENS:,}")
    prompt_id = item.get("id")
    if prompt_id is not None and (not isinstance(prompt_id, (str, int)) or isinstance(prompt_id, bool)
                                  or not str(prompt_id).strip()):
        raise ConfigError(f"{where}: id must be text or a number")
    expect = item.get("expect")
    if expect is not None and (not isinstance(expect, str) or not expect):
        raise ConfigError(f"{where}: expect must be text (a substring, or /a regular expression/)")
    texts = [text for message in messages for text in message] + [str(prompt_id or ""), expect or ""]
    if not all(_is_text(text) for text in texts) or not _is_text(json.dumps(
            {key: item[key] for key in AGENT_KEYS if key in item}, ensure_ascii=False)):
        raise ConfigError(f"{where}: holds a lone surrogate (an escape like \\ud800 that is half of a character): "
                          "write the whole character, or both halves of its pair")
    return Prompt(
        str(prompt_id) if prompt_id is not None else prompt_id_for(messages), messages,
        max_tokens=max_tokens, expect=Expectation.parse(expect, where) if expect else None, **agent,
    )


def _agent_fields(item: dict, where: str) -> dict[str, Any]:
    """The Prompt fields of an entry's agent keys (agent_workloads.py checks each), each refused in one line."""
    fields: dict[str, Any] = {}
    if "turns" in item:
        fields["turns"] = parse_turns(item["turns"], where)
    if "think_time_s" in item:
        if "turns" not in item:
            raise ConfigError(f"{where}: think_time_s is the pause between the turns of a conversation: give turns")
        fields["think_time_s"] = parse_think_time(item["think_time_s"], where)
    if "tools" in item:
        fields["tools"] = parse_tools(item["tools"], where)
    names = [tool_name(tool) for tool in fields.get("tools", ())]
    for key in ("tool_choice", "expect_tool", "tool_results"):
        if key in item and not names:
            raise ConfigError(f"{where}: {key} needs tools: give the entry's tools")
    if "tool_choice" in item:
        fields["tool_choice"] = parse_tool_choice(item["tool_choice"], names, where)
    if "expect_tool" in item:
        fields["expect_tool"] = parse_expect_tool(item["expect_tool"], names, where)
    if "tool_results" in item:
        fields["tool_results"] = parse_tool_results(item["tool_results"], names, where)
    if "schema" in item:
        fields["schema"] = check_schema(item["schema"], where)
    return fields


def _is_text(text: str) -> bool:
    """Text that can be sent and stored: JSON's \\ud800 escape gives a lone surrogate, which UTF-8 cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_prompt_file(path: str, cache_mode: str = "bust") -> Workload:
    """A set of the user's prompts: `.txt` (separated by lines of `---`) or `.jsonl` (one object a line); the whole
    file within MAX_PROMPT_BYTES, every line checked before anything is sent or stored."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".txt", ".jsonl"):
        raise ConfigError(f"--prompts takes a .txt or .jsonl file, not {file.name!r}")
    data = read_bounded(file, "--prompts", MAX_PROMPT_BYTES, lambda size: ConfigError(
        f"--prompts {path} is over {MAX_PROMPT_BYTES // 1_000_000} MB ({size / 1e6:.1f} MB): a prompt file holds "
        "prompts, not corpora"))
    text = utf8_text(data, "--prompts", file)
    prompts: dict[str, Prompt] = {}  # by id, in the file's order
    if suffix == ".jsonl":
        # split at \n only: str.splitlines() also splits at U+2028 and the like, which JSON strings may hold as they are
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            item = json_line(line, where, "a prompt")
            _add(prompts, _prompt_from_object(item, where), path)
    else:
        for part in re.split(r"^---[ \t\r]*$", text, flags=re.M):  # a CRLF file's separator line ends in \r
            if part.strip():
                _add(prompts, _prompt_from_object({"prompt": part.strip()}, path), path)
    if not prompts:
        raise ConfigError(f"--prompts {path} holds no prompt")
    return Workload(file.name, tuple(prompts.values()), cache_mode)


def _add(prompts: dict[str, Prompt], prompt: Prompt, path: str) -> None:
    """One more prompt of a file, refused as soon as the file holds too many or repeats an id."""
    if len(prompts) >= MAX_PROMPTS:
        raise ConfigError(f"--prompts {path} holds more than {MAX_PROMPTS:,} prompts: split it into several runs")
    if prompt.prompt_id in prompts:
        raise ConfigError(f"{path}: prompt id {shown(prompt.prompt_id)} appears twice")
    prompts[prompt.prompt_id] = prompt


def cache_marker() -> str:
    """A short marker unique to one request."""
    return uuid.uuid4().hex[:12]


# A trace's shared prefixes (load/trace.py): Mooncake's public trace counts its hash_ids in blocks of 512 tokens.
TRACE_BLOCK_TOKENS = 512


def block_text(key: str, tokens: int = TRACE_BLOCK_TOKENS) -> str:
    """A block of a trace prompt: about `tokens` tokens of the synthetic document, the same text for the same key
    (a hash id, or a request's own tail), led by its key so that no two blocks share a first word. Ends in a space,
    so that blocks put one after another stay words."""
    head = f"Part {key}. "
    words = max(1, round((tokens - 2 - -(-len(key) // 3)) / TOKENS_PER_WORD))  # 'Part', '.', the key's digits
    return head + synthetic_document(round(words * TOKENS_PER_WORD), seed=hash_seed(key)) + " "


def hash_seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
