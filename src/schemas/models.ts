import { Type, type Static } from '@sinclair/typebox'

export const Model = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer(),
  owned_by: Type.String()
})

export const ModelList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Model)
})

export type Model = Static<typeof Model>
export type ModelList = Static<typeof ModelList>
