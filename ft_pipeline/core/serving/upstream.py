"""The engine behind the guard when another server runs the model: vLLM, started by `serve --engine
vllm` on a private port (vllm.py), or any OpenAI-compatible server named by `serve --upstream URL`.
It has the local Engine's methods, so app.py's guard, limits and traffic log and live.py's rollout
run one code path over either: the request is limited and redacted here, the redacted messages go
upstream, and the answer comes back whole to be checked and masked here before any byte of it is
released (a stream included: app.sse cuts the chunks from the masked answer, so a value masked in
the answer cannot reach a client in a chunk; the price is the first token's latency, as locally).

Model ids: clients call the public names (`<name>`, `<name>:<version>`); each maps to the name the
upstream serves the adapter under. Switching what `<name>` answers with (load_inplace, a live
rollout that passed) maps `<name>` to the module already loaded for that adapter: vLLM needs no
in-place reload, and a module no public name maps to any more is unloaded upstream.

An upstream that is down, times out or fails answers the client as a 503/504/502 OpenAI error
(`upstream_unavailable`, `upstream_timeout`, `upstream_error`); its 4xx refusals are relayed with
their status and message (upstream only ever saw redacted text).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from ft_pipeline.core.serving.engine import Adapter, AdapterError, Generation, render_chat
from ft_pipeline.core.serving.guard import GuardError

log = logging.getLogger("ft_pipeline.serve")


class UpstreamError(GuardError):
    """The upstream server failed or refused: the OpenAI error object with its status, never a 500
    with a traceback."""

    def __init__(self, status: int, message: str, code: str, type_: str | None = None):
        super().__init__(status, message, type_ or ("server_error" if status >= 500 else "invalid_request_error"), code)


class UpstreamEngine:
    def __init__(self, url: str, base_model_dir: str | Path, base_id: str, api_key: str | None = None,
                 timeout_s: float = 300.0):
        import httpx
        from transformers import AutoTokenizer

        self.url, self.base_id, self.timeout_s = url.rstrip("/"), base_id, timeout_s
        # The tokenizer alone (no weights): the prompt-token limit is checked before anything goes upstream.
        self.tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
        self.adapters: dict[str, Adapter] = {}  # public name -> the adapter it answers with
        self._upstream: dict[str, str] = {}  # public name -> the upstream's model id for that adapter
        self._modules: dict[str, Path] = {}  # upstream model id -> the adapter folder loaded under it
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout_s, connect=5.0),
                                  headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
                                  limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))

    # --- the upstream ----------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None):
        import httpx

        try:
            response = self._http.request(method, path, json=body)
        except httpx.TimeoutException:
            raise UpstreamError(504, f"the model server at {self.url} did not answer within {self.timeout_s:.0f} s",
                                "upstream_timeout") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(503, f"the model server at {self.url} is not answering ({type(exc).__name__}); "
                                     "retry later", "upstream_unavailable") from None
        if response.status_code >= 500:
            raise UpstreamError(502, f"the model server at {self.url} failed (HTTP {response.status_code})", "upstream_error")
        try:
            payload = response.json()
        except ValueError:
            payload = response.text  # vLLM answers the adapter endpoints in plain text
        if response.status_code >= 400:
            error = (payload.get("error") if isinstance(payload, dict) else None) or {}
            message = error.get("message") if isinstance(error, dict) else None
            raise UpstreamError(response.status_code, str(message or payload or "refused")[:300],
                                (error.get("code") if isinstance(error, dict) else None) or "upstream_refused",
                                error.get("type") if isinstance(error, dict) else None)
        return payload

    def upstream_models(self) -> dict[str, str | None]:
        """{model id: its folder (`root`) as the upstream reports it}."""
        listing = self._call("GET", "/v1/models")
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            raise UpstreamError(502, f"the model server at {self.url} sent no model list", "upstream_error")
        return {m.get("id"): m.get("root") for m in listing["data"] if isinstance(m, dict)}

    def attach(self, adapters: list[Adapter]) -> None:
        """Serves `adapters` under their names: the upstream's module of that name when it holds the
        same folder (vLLM started with --lora-modules), else loaded now."""
        served = self.upstream_models()
        for adapter in adapters:
            root = served.get(adapter.name)
            if adapter.name in served and root and Path(root).resolve() != Path(adapter.path).resolve():
                raise AdapterError(f"the model server at {self.url} serves {adapter.name!r} from another folder "
                                   f"({root}, not {adapter.path})")
            if adapter.name in served:
                self._modules[adapter.name] = Path(adapter.path).resolve()
                self.adapters[adapter.name], self._upstream[adapter.name] = adapter, adapter.name
            else:
                self.load(adapter)

    # --- adapters ---------------------------------------------------------------------------
    def load(self, adapter: Adapter, replace: bool = False) -> None:
        with self._lock:
            if adapter.name in self.adapters and not replace:
                raise AdapterError(f"an adapter named {adapter.name!r} is already loaded "
                                   "(unload it first, or load it with load_inplace)")
            folder = Path(adapter.path).resolve()
            module = next((m for m, path in self._modules.items() if path == folder), None)
            if module is None:
                module = next(m for m in (adapter.name, adapter.version, *(f"{adapter.version}#{k}" for k in range(1, 10**6)))
                              if m not in self._modules)
                self._adapter_call("/v1/load_lora_adapter", {"lora_name": module, "lora_path": str(adapter.path)})
                self._modules[module] = folder
            before = self._upstream.get(adapter.name)
            self.adapters[adapter.name], self._upstream[adapter.name] = adapter, module
            if before and before != module:
                self._release(before)

    def unload(self, name: str) -> None:
        with self._lock:
            if name not in self.adapters:
                raise AdapterError(f"no adapter named {name!r} is loaded", status=404)
            del self.adapters[name]
            self._release(self._upstream.pop(name))

    def _release(self, module: str) -> None:
        """Unloads an upstream module no public name maps to any more (a failure only costs memory)."""
        if module in self._upstream.values():
            return
        self._modules.pop(module, None)
        try:
            self._adapter_call("/v1/unload_lora_adapter", {"lora_name": module})
        except (AdapterError, GuardError) as exc:
            log.warning("could not unload %s from the model server: %s", module, str(exc)[:200])

    def _adapter_call(self, path: str, body: dict) -> None:
        try:
            self._call("POST", path, body)
        except UpstreamError as exc:
            if exc.status >= 500:
                raise
            raise AdapterError(f"the model server refused {path.rsplit('/', 1)[-1]} for {body['lora_name']!r}: {exc}",
                               exc.status) from None

    def models(self) -> list[Adapter]:
        """The public names whose module the upstream still serves (a restarted vLLM forgets what
        was loaded at run time)."""
        served = self.upstream_models()
        with self._lock:
            return [a for name, a in self.adapters.items() if self._upstream[name] in served]

    # --- generation -------------------------------------------------------------------------
    def render(self, messages: list[dict]) -> list[int]:
        return render_chat(self.tokenizer, messages)

    def guide(self, task, wants_json: bool, schema: dict | None) -> dict:
        """The request fields that keep vLLM's answer in the task's form (its structured outputs):
        the requested schema, else the task's schema or label set."""
        schema = schema if wants_json and schema is not None else (task.schema if task.type == "structured" else None)
        if schema is not None:
            return {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}}
        if wants_json:
            return {"response_format": {"type": "json_object"}}
        if task.type == "classification" and task.labels:
            return {"structured_outputs": {"choice": [str(label) for label in task.labels]}}
        return {}

    def warm_up(self) -> None:
        """Nothing to build here: the upstream loaded its model before it answered."""

    def problem(self) -> str | None:
        """Why the guard cannot answer now (/health answers 503 with it), or None."""
        import httpx

        try:
            status = self._http.get("/health", timeout=5.0).status_code
        except httpx.HTTPError as exc:
            return f"the model server at {self.url} is not answering ({type(exc).__name__})"
        return None if status == 200 else f"the model server at {self.url} is not healthy (HTTP {status})"

    def generate(self, name: str, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, parser: dict | None = None, stops: list[str] = (),
                 messages: list[dict] | None = None) -> Generation:
        with self._lock:
            adapter, module = self.adapters.get(name), self._upstream.get(name)
        if adapter is None:
            raise AdapterError(f"no model named {name!r} is served", status=404)
        body = {"model": module, "messages": messages, "max_tokens": max_new_tokens, "temperature": temperature,
                "top_p": top_p, "stream": False, **(parser or {})}
        if seed is not None:
            body["seed"] = seed
        if stops:
            body["stop"] = list(stops)
        reply = self._call("POST", "/v1/chat/completions", body)
        try:
            choice, usage = reply["choices"][0], reply.get("usage") or {}
            text = (choice["message"].get("content") or "").strip()
        except (KeyError, IndexError, TypeError, AttributeError):
            raise UpstreamError(502, f"the model server at {self.url} sent no chat completion", "upstream_error") from None
        return Generation(text, "length" if choice.get("finish_reason") == "length" else "stop",
                          int(usage.get("prompt_tokens") or len(prompt_ids)), int(usage.get("completion_tokens") or 0),
                          adapter.version)

    def close(self) -> None:
        self._http.close()
