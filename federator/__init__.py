"""The federator: keeps Istio ServiceEntries and DestinationRules in every member cluster in
step with the Services the other clusters export. Pure desired/render/diff core; only
``federator.kube`` talks to apiservers."""
