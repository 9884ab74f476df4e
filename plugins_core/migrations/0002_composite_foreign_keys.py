"""Composite foreign keys that make cross-organization references impossible on PostgreSQL.

Each project-scoped row repeats its organization; these keys require the referenced row to be
in the same organization, and a binding's tab to equal its plugin's type. SQLite (the embedded
default) cannot add constraints to existing tables; there ``clean()`` enforces the same rules.
"""

from django.db import migrations

CONSTRAINTS = [
    # (table, name, local columns, referenced table, referenced columns)
    ("core_project", "project_type_same_org", "project_type_id, organization_id",
     "core_projecttype", "id, organization_id"),
    ("plugins_core_plugin", "plugin_service_same_org", "service_id, organization_id",
     "plugins_core_thirdpartyservice", "id, organization_id"),
]
for _table, _scope, _scope_table in (
    ("plugins_core_projecttypeplugin", "project_type_id", "core_projecttype"),
    ("plugins_core_projectplugin", "project_id", "core_project"),
):
    CONSTRAINTS += [
        (_table, f"{_table}_scope_same_org", f"{_scope}, organization_id",
         _scope_table, "id, organization_id"),
        (_table, f"{_table}_plugin_same_org", "plugin_id, organization_id",
         "plugins_core_plugin", "id, organization_id"),
        (_table, f"{_table}_tab_is_plugin_type", "plugin_id, tab",
         "plugins_core_plugin", "id, plugin_type"),
        (_table, f"{_table}_identity_same_org", "identity_plugin_id, organization_id",
         "plugins_core_plugin", "id, organization_id"),
    ]


def add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, columns, ref_table, ref_columns in CONSTRAINTS:
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({columns}) "
            f"REFERENCES {ref_table} ({ref_columns})"
        )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, *_ in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("plugins_core", "0001_initial"),
    ]

    operations = [migrations.RunPython(add, remove)]
