"""Ignition's RunPod template: generated offline, deployed through RunPod's REST v2 API.

build.py    inputs → the create-template request body (pure, deterministic)
page.py     inputs → the template's Markdown page (pure, deterministic)
schema.py   the shipped OpenAPI document, and checks of request bodies against it
deploy.py   create, or update by name, through /v2/templates; errors that say what to do
"""
