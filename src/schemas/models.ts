import { Type, type Static } from '@sinclair/typebox'

export const ModelSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer(),
  owned_by: Type.String()
})

export const ModelListSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(ModelSchema)
})

export type Model = Static<typeof ModelSchema>
export type ModelList = Static<typeof ModelListSchema>
