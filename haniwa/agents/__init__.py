"""Agents: Bedrock-style agents (instructions, action groups, knowledge bases) orchestrated by a local
model in a ReAct loop whose every step is constrained to the offered tools' schemas."""
