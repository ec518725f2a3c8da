"""Volume 4 (The Frontier): multimodal models and agents, offline and on a CPU.

Every "model" here is trained inside a chapter (a mini-CLIP, a tiny GPT from :mod:`manifold_course.nn.gpt`) or is a
scripted policy stated as such; every protocol (ReAct, function calling, memory, message routing) is real code.
"""
