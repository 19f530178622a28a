from marshmallow import Schema, fields, validate

from schemas.common import TimeBoundedPageQuerySchema


class AuditEventSchema(Schema):
    id = fields.String(required=True)
    occurred_at = fields.DateTime(required=True)
    actor_id = fields.String(
        required=True, metadata={"description": "Key, staff or holder id, or `system`."}
    )
    actor_role = fields.String(required=True)
    actor = fields.Dict(
        required=True,
        metadata={
            "description": 'Who did it: `{"type": "staff", "id", "display_name"}`, '
            '`{"type": "key", "id", "label"}`, `{"type": "holder", "id"}` or '
            '`{"type": "system"}`.'
        },
    )
    action = fields.String(required=True, metadata={"example": "partner.status"})
    entity_type = fields.String(required=True, metadata={"example": "partner"})
    entity_id = fields.String(required=True)
    changes = fields.Dict(
        required=True, metadata={"description": "field -> [before, after]; never a PIN or key."}
    )


class AuditListQuerySchema(TimeBoundedPageQuerySchema):
    entity = fields.String(
        validate=validate.Length(min=1, max=40),
        metadata={"description": "Entity type, e.g. `partner`, `offer`, `holder`, `api_key`."},
    )
    entity_id = fields.String(validate=validate.Length(min=1, max=100))
    actor = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Actor id: a key, staff account or holder id."},
    )
    actor_type = fields.String(
        validate=validate.OneOf(["staff", "key", "holder", "system"]),
        metadata={"description": "Only events by this kind of actor."},
    )
