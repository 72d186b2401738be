//! Checks GraphQL operations against an SDL schema (the IOTA schema bundled with `iota-sdk`):
//! every selected field exists on its parent type, every argument exists on its field, every
//! variable is declared with the argument's type (or its non-null form), leaf fields have no
//! selections and object fields have some; on a union only `__typename` and inline fragments
//! on its members. Queries, mutations and subscriptions. Enough to keep the backend's
//! operations and the simulator honest; not a full GraphQL validator (no named fragments,
//! directives or literals of input objects).

use std::collections::HashMap;

use cynic_parser::common::OperationType;
use cynic_parser::executable::Selection;
use cynic_parser::type_system::{Definition, TypeDefinition};
use cynic_parser::Value;

struct Field {
    /// Full type, e.g. `[String!]!`.
    ty: String,
    /// Named type, e.g. `String`.
    named: String,
    /// Argument name → full type.
    arguments: HashMap<String, String>,
}

/// An indexed schema.
pub struct Schema {
    /// Object and interface types: type → field → definition.
    types: HashMap<String, HashMap<String, Field>>,
    /// Union → member types.
    unions: HashMap<String, Vec<String>>,
    query: String,
    mutation: String,
    subscription: String,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Schema({} types)", self.types.len())
    }
}

impl Schema {
    /// Parses and indexes SDL.
    pub fn parse(sdl: &str) -> Result<Schema, String> {
        let doc = cynic_parser::parse_type_system_document(sdl).map_err(|e| e.to_string())?;
        let mut types = HashMap::new();
        let mut unions: HashMap<String, Vec<String>> = HashMap::new();
        for definition in doc.definitions() {
            let (name, fields) = match definition {
                Definition::Type(TypeDefinition::Union(u))
                | Definition::TypeExtension(TypeDefinition::Union(u)) => {
                    unions
                        .entry(u.name().to_string())
                        .or_default()
                        .extend(u.members().map(|m| m.name().to_string()));
                    continue;
                }
                Definition::Type(TypeDefinition::Object(o))
                | Definition::TypeExtension(TypeDefinition::Object(o)) => (o.name(), o.fields()),
                Definition::Type(TypeDefinition::Interface(i))
                | Definition::TypeExtension(TypeDefinition::Interface(i)) => (i.name(), i.fields()),
                _ => continue,
            };
            let entry: &mut HashMap<String, Field> = types.entry(name.to_string()).or_default();
            for field in fields {
                entry.insert(
                    field.name().to_string(),
                    Field {
                        ty: field.ty().to_string(),
                        named: field.ty().name().to_string(),
                        arguments: field
                            .arguments()
                            .map(|a| (a.name().to_string(), a.ty().to_string()))
                            .collect(),
                    },
                );
            }
        }
        if !types.contains_key("Query") {
            return Err("schema has no Query type".into());
        }
        Ok(Schema {
            types,
            unions,
            query: "Query".into(),
            mutation: "Mutation".into(),
            subscription: "Subscription".into(),
        })
    }

    /// Validates one executable document.
    pub fn validate(&self, query: &str) -> Result<(), String> {
        let doc = cynic_parser::parse_executable_document(query).map_err(|e| e.to_string())?;
        let mut count = 0;
        for op in doc.operations() {
            count += 1;
            let root = match op.operation_type() {
                OperationType::Query => &self.query,
                OperationType::Mutation => &self.mutation,
                OperationType::Subscription => &self.subscription,
            };
            let variables: HashMap<&str, String> = op
                .variable_definitions()
                .map(|v| (v.name(), v.ty().to_string()))
                .collect();
            self.selections(root, op.selection_set(), &variables)?;
        }
        if count == 0 {
            return Err("no operation".into());
        }
        Ok(())
    }

    fn selections<'a>(
        &self,
        parent: &str,
        selections: impl Iterator<Item = Selection<'a>>,
        variables: &HashMap<&str, String>,
    ) -> Result<(), String> {
        if let Some(members) = self.unions.get(parent) {
            for selection in selections {
                match selection {
                    Selection::Field(f) if f.name() == "__typename" => {}
                    Selection::Field(f) => {
                        return Err(format!(
                            "union {parent} has no field {:?} (use ... on Member)",
                            f.name()
                        ))
                    }
                    Selection::InlineFragment(fragment) => {
                        let Some(on) = fragment.type_condition() else {
                            return Err(format!("a fragment on union {parent} needs a type"));
                        };
                        if !members.iter().any(|m| m == on) {
                            return Err(format!("{on} is not a member of union {parent}"));
                        }
                        self.selections(on, fragment.selection_set(), variables)?;
                    }
                    Selection::FragmentSpread(_) => {
                        return Err("named fragments are not supported by this check".into())
                    }
                }
            }
            return Ok(());
        }
        let fields = self
            .types
            .get(parent)
            .ok_or_else(|| format!("type {parent} has no fields"))?;
        for selection in selections {
            let Some(selection) = selection.as_field() else {
                return Err("fragments are not supported by this check".into());
            };
            let name = selection.name();
            if name == "__typename" {
                continue;
            }
            let field = fields
                .get(name)
                .ok_or_else(|| format!("type {parent} has no field {name:?}"))?;
            for argument in selection.arguments() {
                let declared = field.arguments.get(argument.name()).ok_or_else(|| {
                    format!(
                        "field {parent}.{name} has no argument {:?}",
                        argument.name()
                    )
                })?;
                if let Value::Variable(v) = argument.value() {
                    let given = variables
                        .get(v.name())
                        .ok_or_else(|| format!("variable ${} is not declared", v.name()))?;
                    let compatible =
                        given == declared || given.strip_suffix('!') == Some(declared.as_str());
                    if !compatible {
                        return Err(format!(
                            "variable ${} is {given} but {parent}.{name}({}) takes {declared}",
                            v.name(),
                            argument.name()
                        ));
                    }
                }
            }
            for (arg, ty) in &field.arguments {
                if ty.ends_with('!') && !selection.arguments().any(|a| a.name() == arg) {
                    return Err(format!("{parent}.{name} needs argument {arg:?}"));
                }
            }
            let has_children = selection.selection_set().next().is_some();
            let is_object =
                self.types.contains_key(&field.named) || self.unions.contains_key(&field.named);
            match (is_object, has_children) {
                (true, true) => {
                    self.selections(&field.named, selection.selection_set(), variables)?
                }
                (true, false) => {
                    return Err(format!("{parent}.{name} ({}) needs a selection", field.ty))
                }
                (false, true) => return Err(format!("{parent}.{name} ({}) is a leaf", field.ty)),
                (false, false) => {}
            }
        }
        Ok(())
    }
}
