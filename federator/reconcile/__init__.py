"""Level-based reconcile of global services (see docs/adr/0000-level-based-reconcile.md).

Pure core, no I/O: ``desired`` (views of all clusters + config -> global services), ``render``
(global service + target -> ServiceEntry/DestinationRule dicts), ``diff`` (desired vs owned
objects in a target -> Plan). The apply/runner modules that execute a Plan live beside these
and are the only ones allowed to call ``federator.kube``.

Typical use by the reconciler for one key or a full resync::

    desired = compute_desired(config=config, views=views, keys=[key])
    for target in config.clusters:  # only targets whose owned-object list is fresh
        rendered = render_cluster(desired, target=target,
                                  namespaces=views[target.name].namespaces, config=config)
        plan = diff_cluster(cluster=target.name, desired=rendered.manifests,
                            actual=owned_objects_in(target, key),
                            members={c: views[c].trusted for c in config.cluster_ids})
        # apply plan.applies with SSA (field manager "meshfed"), delete plan.deletes

When reconciling a single key, pass only that key's owned objects as ``actual`` (select by the
``meshfed.io/service`` label), otherwise other services' objects would look undesired.
"""
