"""ebank: an electronic banking platform."""
