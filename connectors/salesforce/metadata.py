"""The ``Renkei_*__c`` fields as a Salesforce metadata package an admin deploys once.

``python -m renkei.connectors.salesforce.metadata OUTDIR`` writes an SFDX project::

    OUTDIR/sfdx-project.json
    OUTDIR/force-app/main/default/objects/<Object>/fields/<Field>.field-meta.xml
    OUTDIR/force-app/main/default/permissionsets/Renkei_Integration.permissionset-meta.xml

Deploy it with ``sf project deploy start --source-dir OUTDIR/force-app --target-org <alias>`` and assign the
permission set to the integration user (``sf org assign permset --name Renkei_Integration --on-behalf-of
<username>``). The permission set grants read/edit on every field (a field the user cannot see is
"No such column" to the API) and the object access Renkei needs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from .fields import RENKEI_FIELDS, CustomField

API_VERSION = "60.0"
OBJECT_ACCESS = {"Account": (True, True, True), "Opportunity": (True, False, True),
                 "OpportunityLineItem": (True, False, False), "Product2": (True, True, True),
                 "PricebookEntry": (True, True, True)}  # (read, create, edit)


def field_xml(f: CustomField) -> str:
    body = [f"    <fullName>{f.name}</fullName>", f"    <label>{escape(f.label)}</label>",
            "    <description>Written by Renkei (CRM ⇄ ERP integration)</description>"]
    if f.type == "Text":
        body += [f"    <type>Text</type>", f"    <length>{f.length or 255}</length>",
                 f"    <externalId>{str(f.external_id).lower()}</externalId>",
                 f"    <unique>{str(f.unique).lower()}</unique>", "    <caseSensitive>false</caseSensitive>"]
    elif f.type == "Checkbox":
        body += ["    <type>Checkbox</type>", "    <defaultValue>false</defaultValue>"]
    elif f.type in ("Currency", "Number"):
        scale = 4 if f.name == "Renkei_Stock__c" else 0
        body += [f"    <type>{f.type}</type>", "    <precision>18</precision>", f"    <scale>{scale}</scale>"]
    elif f.type == "Picklist":
        values = "".join(f"\n                <value><fullName>{v}</fullName><default>false</default>"
                         f"<label>{v}</label></value>" for v in f.values)
        body += ["    <type>Picklist</type>", "    <valueSet>", "        <restricted>true</restricted>",
                 f"        <valueSetDefinition><sorted>false</sorted>{values}\n        </valueSetDefinition>",
                 "    </valueSet>"]
    else:  # Date, DateTime, Email, Url
        body.append(f"    <type>{f.type}</type>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            + "\n".join(body) + "\n</CustomField>\n")


def permission_set_xml() -> str:
    fields = "".join(f"\n    <fieldPermissions><editable>true</editable><field>{f.full_name}</field>"
                     f"<readable>true</readable></fieldPermissions>" for f in RENKEI_FIELDS)
    objects = "".join(
        f"\n    <objectPermissions><allowCreate>{str(c).lower()}</allowCreate><allowDelete>false</allowDelete>"
        f"<allowEdit>{str(e).lower()}</allowEdit><allowRead>{str(r).lower()}</allowRead>"
        f"<modifyAllRecords>false</modifyAllRecords><object>{o}</object><viewAllRecords>true</viewAllRecords>"
        f"</objectPermissions>" for o, (r, c, e) in OBJECT_ACCESS.items())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            "    <label>Renkei Integration</label>\n    <description>Field and object access of the Renkei "
            f"integration user</description>{fields}{objects}\n</PermissionSet>\n")


def tooling_body(f: CustomField) -> dict:
    """``POST /services/data/v60.0/tooling/sobjects/CustomField`` body (a development shortcut; production orgs
    should get the package above)."""
    meta: dict = {"label": f.label, "type": f.type, "description": "Written by Renkei"}
    if f.type == "Text":
        meta.update(length=f.length or 255, externalId=f.external_id, unique=f.unique)
    elif f.type in ("Currency", "Number"):
        meta.update(precision=18, scale=4 if f.name == "Renkei_Stock__c" else 0)
    elif f.type == "Checkbox":
        meta.update(defaultValue="false")
    elif f.type == "Picklist":
        meta["valueSet"] = {"restricted": True, "valueSetDefinition": {
            "sorted": False, "value": [{"fullName": v, "label": v, "default": False} for v in f.values]}}
    return {"FullName": f.full_name, "Metadata": meta}


def write_package(out: Path) -> list[Path]:
    root = Path(out)
    written = []
    project = root / "sfdx-project.json"
    project.parent.mkdir(parents=True, exist_ok=True)
    project.write_text(json.dumps({"packageDirectories": [{"path": "force-app", "default": True}],
                                   "sourceApiVersion": API_VERSION}, indent=2) + "\n", encoding="utf-8")
    written.append(project)
    base = root / "force-app" / "main" / "default"
    for f in RENKEI_FIELDS:
        p = base / "objects" / f.object / "fields" / f"{f.name}.field-meta.xml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(field_xml(f), encoding="utf-8")
        written.append(p)
    ps = base / "permissionsets" / "Renkei_Integration.permissionset-meta.xml"
    ps.parent.mkdir(parents=True, exist_ok=True)
    ps.write_text(permission_set_xml(), encoding="utf-8")
    written.append(ps)
    return written


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "renkei-salesforce-metadata")
    for path in write_package(target):
        print(path)
