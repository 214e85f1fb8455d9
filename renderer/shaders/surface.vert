#version 330 core
#extension GL_ARB_shader_viewport_layer_array : require
// The surface pass: which face each pixel of each view sees. pyrender's mesh.vert (MIT
// licence) for gl_Position alone, unchanged except that instance i draws view i into layer
// i of the framebuffer (V is chosen by gl_InstanceID) and that the vertex hands on the
// index of the face whose provoking (last) vertex it is.
// The arithmetic is kept as pyrender writes it (M and inst_m are identities, but
// dropping them changes how the compiler rounds gl_Position, and so the images).

layout(location = 0) in vec3 position;
layout(location = 1) in int face_index;
layout(location = 2) in mat4 inst_m;

uniform mat4 M;
uniform mat4 views[NUM_VIEWS];
uniform mat4 P;

flat out int face;

void main()
{
    face = face_index;
    gl_Layer = gl_InstanceID;
    mat4 V = views[gl_InstanceID];
    gl_Position = P * V * M * inst_m * vec4(position, 1);
}
