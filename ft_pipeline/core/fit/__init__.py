"""The fit assessment: should this task be fine-tuned at all? The cheaper arms (prompting,
few-shot, retrieval, RAG) measured on the held-out split, a pilot learning curve, the cost, and
the recommendation with the numbers that decided it. It sits above training and evaluation: it
generates with their tools and trains the pilots."""
