"""The AWS stand-ins of the local runtime: moto behind one endpoint, the template deployed onto it,
Lambda containers, the EventBridge Pipe, the HTTP API and its JWT authorizer. No Docker."""
