"""The rules of each resource. Services take a project id and protocol models, return wire models."""
