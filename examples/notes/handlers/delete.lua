-- DELETE /notes/:id   (auth = "key")
return function(req)
  if not docs.delete("notes", req.params.id) then
    return { status = 404, json = { error = { code = "not_found", message = "no note " .. req.params.id } } }
  end
  return { status = 204 }
end
