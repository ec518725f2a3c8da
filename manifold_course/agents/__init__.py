"""Volume 4 (The Frontier): multimodal models and agents, offline and on a CPU.

Every "model" here is trained inside a chapter (a mini-CLIP, a tiny GPT from :mod:`manifold_course.nn.gpt`) or is a
scripted policy stated as such; every protocol (ReAct, function calling, memory, message routing) is real code.

- :mod:`~manifold_course.agents.clip`: a mini-CLIP on the digits, its losses and metrics, DrLIM (4.1);
- :mod:`~manifold_course.agents.llava`: the LLaVA projector, the multimodal batch, a Q-Former, parameter counts (4.2);
- :mod:`~manifold_course.agents.scratchpad`: scratchpads, the $(1-e)^n$ model, a tiny GPT that adds (4.3);
- :mod:`~manifold_course.agents.react`: the ReAct loop, a scripted model and safe tools (4.4);
- :mod:`~manifold_course.agents.constrained`: a tool-call grammar, constrained sampling, the Toolformer filter (4.5);
- :mod:`~manifold_course.agents.memory`: a vector store, Generative Agents' scoring, context-aware decoding (4.6);
- :mod:`~manifold_course.agents.sop`: a publish-subscribe message pool and a MetaGPT-style SOP (4.7);
- :mod:`~manifold_course.agents.audio`: Whisper's front end and a keyword classifier (4.8);
- :mod:`~manifold_course.agents.tree_of_thoughts`: the Game of 24 as search, with traces and jumps (4.9);
- :mod:`~manifold_course.agents.action_tokens`: RT-2's action tokens and an action-token policy (4.10).
"""
