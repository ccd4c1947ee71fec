import logging

# bitsandbytes (the `gpu` and `test` extras; peft imports it whenever it is installed) warns at
# import, on CPUs with AVX512-bf16, that an optional fused 4-bit kernel package is missing. The
# 4-bit path works without it, and the line would read like an error in every run's log.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
