"""Serving a promoted model behind the OpenAI API (the API vLLM speaks), guarded and logged.

    protocol   pydantic request/response models mirroring OpenAI's (and vLLM's adapter endpoints)
    engine     transformers + peft: one base model, the registry's adapters loaded, switched, deleted
    decoding   schema- and label-guided decoding (lm-format-enforcer) for response_format and the task
    guard      limits (length, tokens, rate), redaction of requests and answers, the task's answer check
    traffic    the redacted production_traffic log, one JSONL file per day
    app        the FastAPI app: routers per resource, errors as the OpenAI error object
    server     registry versions -> adapters -> app -> uvicorn (`ft-pipeline serve`)
    upstream   the engine when another server runs the model (vLLM, `serve --upstream URL`): the same guard in front
    vllm       the `vllm serve` argv the same registry versions give on a GPU machine, started on a private port
"""
