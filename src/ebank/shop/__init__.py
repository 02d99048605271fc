"""The example shop that shows a merchant how to take payment through the gateway
(`ebank shop`; docs/gateway.md, "The example shop")."""
